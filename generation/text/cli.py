"""``python -m generation chat "PROMPT" [options]``: stream one completion to stdout."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator

from generation.errors import GenerationError, ValidationError
from generation.text.types import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    TokenDelta,
)

_DEFAULTS = DecodingParams()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, no usage block: the caller may be a script reading stderr.
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m generation chat", description="Generate a chat reply, streamed.")
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--model", default=DEFAULT_TEXT_MODEL)
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument("--strategy", choices=("greedy", "beam", "sample"), default=_DEFAULTS.strategy)
    parser.add_argument("--temperature", type=float, default=_DEFAULTS.temperature)
    parser.add_argument("--top-k", type=int, default=_DEFAULTS.top_k)
    parser.add_argument("--top-p", type=float, default=_DEFAULTS.top_p)
    parser.add_argument("--repetition-penalty", type=float, default=_DEFAULTS.repetition_penalty)
    parser.add_argument("--num-beams", type=int, default=_DEFAULTS.num_beams)
    parser.add_argument("--length-penalty", type=float, default=_DEFAULTS.length_penalty)
    parser.add_argument("--max-new-tokens", type=int, default=_DEFAULTS.max_new_tokens)
    parser.add_argument("--stop", nargs="+", default=[], metavar="TEXT")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON object per delta, then a final one")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; 0 on success, 2 on a bad argument, 1 when generation fails."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's own errors (exit 2) and --help (exit 0)
        return int(exc.code or 0)
    request = TextRequest(
        messages=(ChatMessage("user", args.prompt),),
        model=args.model,
        system=args.system,
        params=DecodingParams(
            strategy=args.strategy,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            repetition_penalty=args.repetition_penalty,
            num_beams=args.num_beams,
            length_penalty=args.length_penalty,
            max_new_tokens=args.max_new_tokens,
            stop=tuple(args.stop),
            seed=args.seed,
        ),
    )
    from generation.text.engine import generate_text

    interrupted = threading.Event()
    try:
        stream = generate_text(request, should_stop=interrupted.is_set)
    except ValidationError as exc:
        where = "PROMPT" if exc.field == "messages" else f"--{exc.field.replace('_', '-')}"
        print(f"error: {where}: {exc.message}", file=sys.stderr)
        return 2
    except GenerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    final = _print_stream(stream, as_json=args.json, interrupted=interrupted)
    return 1 if final.finish_reason == "error" else 0


def _print_stream(
    stream: Iterator[TokenDelta | TextFinal], *, as_json: bool, interrupted: threading.Event
) -> TextFinal:
    # Ctrl-C cancels: the engine stops within a token and the final record is still printed.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set()) if in_main_thread else None
    try:
        for item in stream:
            if isinstance(item, TextFinal):
                final = item
            elif as_json:
                print(json.dumps({"text": item.text, "index": item.index, "elapsed": round(item.elapsed, 4)}), flush=True)
            else:
                sys.stdout.write(item.text)
                sys.stdout.flush()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    if as_json:
        print(json.dumps({**final.to_dict(), "done": True}), flush=True)
    else:
        sys.stdout.write("\n")
        if final.error:
            print(f"error: {final.error}", file=sys.stderr)
    return final

"""``python -m generation chat "PROMPT" [options]``: stream one completion to stdout."""
from __future__ import annotations

import argparse
import json
import sys

from generation.errors import GenerationError, ValidationError
from generation.text.types import DEFAULT_TEXT_MODEL, ChatMessage, DecodingParams, TextFinal, TextRequest

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
    args = build_parser().parse_args(argv)
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

    try:
        stream = generate_text(request)
    except ValidationError as exc:
        print(f"error: --{exc.field.replace('_', '-')}: {exc.message}", file=sys.stderr)
        return 2
    except GenerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    final: TextFinal | None = None
    for item in stream:
        if isinstance(item, TextFinal):
            final = item
        elif args.json:
            print(json.dumps({"text": item.text, "index": item.index, "elapsed": round(item.elapsed, 4)}), flush=True)
        else:
            sys.stdout.write(item.text)
            sys.stdout.flush()
    assert final is not None
    if args.json:
        record = final.to_dict()
        record["done"] = True
        print(json.dumps(record), flush=True)
    else:
        sys.stdout.write("\n")
        if final.error:
            print(f"error: {final.error}", file=sys.stderr)
    return 1 if final.finish_reason == "error" else 0

"""Decode speed of the text engine's stream against a bare ``model.generate``.

    python bench/text_decode.py [--max-new-tokens 128] [--repeats 2]

On the default model and a fixed set of prompts, for greedy and for sampling:
time to first token and tok/s through ``generate_text``'s stream, the same
for ``model.generate`` with no streamer (its time to first token is a
one-token ``generate``), and the ratio. Both sides run the same prompts with
the same parameters, alternating, so a busy neighbour slows both alike.
tok/s is completion tokens over the whole request's wall time (prefill
included) on both sides. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# This bench compares the engine's loop with ``model.generate`` on the same torch model.
os.environ.setdefault("ATELIER_TEXT_BACKEND", "transformers")

from generation.text import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    generate_text,
    load_text_model,
)
from generation.text.engine import encode_prompt

PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a bicycle works to a ten-year-old.",
    "List some tips for staying productive when working from home, with a sentence on each.",
    "Describe the water cycle in detail.",
)


def engine_run(request: TextRequest) -> dict[str, float]:
    started = time.perf_counter()
    first = None
    final = None
    for item in generate_text(request):
        if isinstance(item, TextFinal):
            final = item
        elif first is None:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    assert final is not None and final.error is None, final
    return {"tokens": final.completion_tokens, "seconds": total, "ttft": final.time_to_first_token or first or 0.0}


def generate_run(loaded, request: TextRequest) -> dict[str, float]:
    import torch

    params = request.params
    kwargs: dict[str, object] = {"max_new_tokens": params.max_new_tokens, "do_sample": params.strategy == "sample"}
    if params.strategy == "sample":
        kwargs.update(temperature=params.temperature, top_k=params.top_k, top_p=params.top_p)
        torch.manual_seed(params.seed or 0)
    else:
        kwargs.update(temperature=None, top_k=None, top_p=None)
    inputs = torch.tensor([encode_prompt(loaded, request)], device=loaded.model.device)
    with torch.inference_mode():
        started = time.perf_counter()
        loaded.model.generate(inputs, **{**kwargs, "max_new_tokens": 1})
        ttft = time.perf_counter() - started
        started = time.perf_counter()
        out = loaded.model.generate(inputs, **kwargs)
        total = time.perf_counter() - started
    generated = out[0, inputs.shape[1] :].tolist()
    return {"tokens": len(generated), "seconds": total, "ttft": ttft}


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "tok_s": round(sum(r["tokens"] for r in runs) / sum(r["seconds"] for r in runs), 2),
        "ttft_ms": round(1000 * statistics.median(r["ttft"] for r in runs), 1),
        "tokens": int(sum(r["tokens"] for r in runs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_TEXT_MODEL)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    loaded = load_text_model(args.model)
    import torch

    result: dict[str, object] = {
        "model": args.model,
        "device": loaded.device,
        "dtype": loaded.dtype_name,
        "threads": torch.get_num_threads(),
        "max_new_tokens": args.max_new_tokens,
        "prompts": len(PROMPTS),
        "repeats": args.repeats,
    }
    strategies = {
        "greedy": DecodingParams(max_new_tokens=args.max_new_tokens),
        "sample": DecodingParams(strategy="sample", max_new_tokens=args.max_new_tokens, seed=1234),
    }
    for name, params in strategies.items():
        engine, bare = [], []
        for repeat in range(args.repeats):
            for i, prompt in enumerate(PROMPTS):
                request = TextRequest(messages=(ChatMessage("user", prompt),), model=args.model, params=params)
                # Alternate which side goes first, so drift in a neighbour's load evens out.
                if (repeat + i) % 2:
                    bare.append(generate_run(loaded, request))
                    engine.append(engine_run(request))
                else:
                    engine.append(engine_run(request))
                    bare.append(generate_run(loaded, request))
        e, b = summarize(engine), summarize(bare)
        ratio = round(e["tok_s"] / b["tok_s"], 3)
        print(
            f"{name:7s} engine stream: {e['tok_s']:6.1f} tok/s, ttft {e['ttft_ms']:6.1f} ms | "
            f"bare generate: {b['tok_s']:6.1f} tok/s, ttft {b['ttft_ms']:6.1f} ms | ratio {ratio:.3f}",
            flush=True,
        )
        result[name] = {"engine": e, "generate": b, "ratio": ratio}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

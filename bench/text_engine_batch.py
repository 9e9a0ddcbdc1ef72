"""The batched text engine: one stream and 8 at once, OpenVINO against transformers, in one run.

    python bench/text_engine_batch.py [--max-new-tokens 128] [--streams 8] [--repeats 1]
        [--backends openvino,transformers] [--openvino-precision exact|fast]

On the default model, greedy, the same prompts on every side:
- baseline: transformers ``model.generate`` in bf16 (what Atelier ran before), one prompt at a time;
- the engine on each backend (``openvino`` int8 IR, ``transformers`` batched KV-cache loop):
  one stream alone, then ``--streams`` streams submitted at once.
tok/s is completion tokens over wall time (prefill included); for the streams
at once it is all their tokens over the time until the last one ends. Ratios
are taken within this run, so a busy machine slows every side alike. The last
line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.text import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    clear_text_model_cache,
    load_text_model,
)
from generation.text.engine import build_engine, encode_prompt

PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a bicycle works to a ten-year-old.",
    "List some tips for staying productive when working from home, with a sentence on each.",
    "Describe the water cycle in detail.",
    "Write a letter to a friend about a trip to the mountains.",
    "Explain why the sky is blue, step by step.",
    "Describe a busy market in a small town in the morning.",
    "Tell the story of a robot that learns to paint.",
)


def load(backend: str, dtype: str | None = None):
    os.environ["ATELIER_TEXT_BACKEND"] = backend
    if dtype:
        os.environ["ATELIER_TEXT_DTYPE"] = dtype
    else:
        os.environ.pop("ATELIER_TEXT_DTYPE", None)
    clear_text_model_cache()
    loaded = load_text_model(DEFAULT_TEXT_MODEL)
    clear_text_model_cache()
    return loaded


def prompt_ids(loaded, prompt: str) -> list[int]:
    return encode_prompt(loaded, TextRequest(messages=(ChatMessage("user", prompt),)))


def generate_baseline(loaded, prompts, max_new_tokens: int) -> float:
    import torch

    tokens, seconds = 0, 0.0
    for prompt in prompts:
        ids = torch.tensor([prompt_ids(loaded, prompt)])
        started = time.perf_counter()
        with torch.inference_mode():
            out = loaded.model.generate(ids, do_sample=False, max_new_tokens=max_new_tokens)
        seconds += time.perf_counter() - started
        tokens += out.shape[1] - ids.shape[1]
    return tokens / seconds


def engine_single(engine, loaded, prompts, params) -> float:
    tokens, seconds = 0, 0.0
    for prompt in prompts:
        started = time.perf_counter()
        final = list(engine.submit(prompt_ids(loaded, prompt), params))[-1]
        seconds += time.perf_counter() - started
        assert isinstance(final, TextFinal) and final.error is None, final
        tokens += final.completion_tokens
    return tokens / seconds


def engine_many(engine, loaded, prompts, params) -> tuple[float, float, int]:
    finals: list[TextFinal] = []
    started = time.perf_counter()
    with engine.held():
        streams = [engine.submit(prompt_ids(loaded, p), params) for p in prompts]
    threads = [threading.Thread(target=lambda s=s: finals.append(list(s)[-1])) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ttfts = sorted(f.time_to_first_token or 0.0 for f in finals)
    return sum(f.completion_tokens for f in finals) / seconds, ttfts[len(ttfts) // 2], max(f.batch_max for f in finals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default="openvino,transformers")
    parser.add_argument("--openvino-precision", default="exact", choices=("exact", "fast"))
    args = parser.parse_args()
    os.environ["ATELIER_OPENVINO_PRECISION"] = args.openvino_precision
    params = DecodingParams(max_new_tokens=args.max_new_tokens)
    singles = PROMPTS[:2] * args.repeats
    many = [PROMPTS[i % len(PROMPTS)] for i in range(args.streams)]
    figures: dict[str, float] = {}

    baseline_model = load("transformers", "bfloat16")
    figures["generate_bf16_tok_s"] = generate_baseline(baseline_model, singles, args.max_new_tokens)
    print(f"transformers generate, bf16, one stream: {figures['generate_bf16_tok_s']:.1f} tok/s", flush=True)
    for backend in args.backends.split(","):
        loaded = baseline_model if backend == "transformers" else load(backend)
        engine = build_engine(loaded, max_batch=args.streams)
        list(engine.submit(prompt_ids(loaded, "Hello"), DecodingParams(max_new_tokens=4)))  # warm up
        one = engine_single(engine, loaded, singles, params)
        total, ttft, batch = engine_many(engine, loaded, many, params)
        figures[f"{backend}_one_tok_s"] = one
        figures[f"{backend}_{args.streams}_total_tok_s"] = total
        figures[f"{backend}_{args.streams}_median_ttft_s"] = ttft
        figures[f"{backend}_one_over_generate"] = one / figures["generate_bf16_tok_s"]
        figures[f"{backend}_{args.streams}_over_one"] = total / one
        print(
            f"{backend}: one stream {one:.1f} tok/s ({one / figures['generate_bf16_tok_s']:.2f}x generate); "
            f"{args.streams} at once {total:.1f} tok/s ({total / one:.2f}x one stream, largest batch {batch}, "
            f"median first token {ttft:.2f}s)",
            flush=True,
        )
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

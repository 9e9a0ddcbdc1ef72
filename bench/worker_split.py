"""How to split the cores between a text worker and an image worker.

Starts a text process (the default chat model, greedy decoding) and an image
process (the default image model, denoising), each with its own torch thread
count, as ``make run``'s two workers are. For each split it measures, over the
same window, the text rate alone, the image rate alone, and both at once.
Prints one line per split and a JSON line at the end; figures are ratios
within this run (to the text alone and the image alone at the first split).

    .venv/bin/python bench/worker_split.py [--window 8] [--splits 1:1,2:1,1:2,2:2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the two roles, each in its own process ------------------------------------------


def _text_role(window: float) -> dict[str, float]:
    from generation.text import ChatMessage, DecodingParams, TextRequest, TokenDelta, generate_text

    request = TextRequest(messages=(ChatMessage("user", "Tell me a long story about a lighthouse."),),
                          params=DecodingParams(max_new_tokens=64))
    tokens, started = 0, time.perf_counter()
    deadline = started + window
    while time.perf_counter() < deadline:
        for item in generate_text(request, should_stop=lambda: time.perf_counter() >= deadline):
            if isinstance(item, TokenDelta):
                tokens += 1
    return {"tok_s": tokens / (time.perf_counter() - started)}


def _image_role(window: float) -> dict[str, float]:
    from generation.image import ImageRequest, generate_images

    steps, started = 0, time.perf_counter()
    deadline = started + window

    def on_step(*_: object) -> None:
        nonlocal steps
        steps += 1

    while time.perf_counter() < deadline:
        generate_images(ImageRequest(prompt="a large red circle on a white background", seed=0, steps=150),
                        on_step=on_step, should_stop=lambda: time.perf_counter() >= deadline, preview=False)
    return {"steps_s": steps / (time.perf_counter() - started)}


def role_main(role: str, window: float) -> int:
    """Load, warm up, then run one window per ``run`` line on stdin; print each result."""
    work = _text_role if role == "text" else _image_role
    work(1.0)  # loads the model and warms it up
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        print(json.dumps(work(window)), flush=True)
    return 0


# --- the conductor ----------------------------------------------------------------


class Role:
    def __init__(self, role: str, threads: int, window: float) -> None:
        env = {**os.environ, "ATELIER_TORCH_THREADS": str(threads), "ATELIER_PRELOAD_TEXT_MODEL": "0"}
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--role", role, "--window", str(window)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {role} process did not start")

    def start(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, float]:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


def measure(text_threads: int, image_threads: int, window: float) -> dict[str, float]:
    text, image = Role("text", text_threads, window), Role("image", image_threads, window)
    try:
        text.start()
        alone_text = text.result()["tok_s"]
        image.start()
        alone_image = image.result()["steps_s"]
        barrier = threading.Barrier(2)
        for role in (text, image):
            threading.Thread(target=lambda r=role: (barrier.wait(), r.start())).start()
        both_text, both_image = text.result()["tok_s"], image.result()["steps_s"]
    finally:
        text.close()
        image.close()
    return {"text_alone_tok_s": alone_text, "image_alone_steps_s": alone_image,
            "text_both_tok_s": both_text, "image_both_steps_s": both_image}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--splits", default="1:1,2:1,1:2,2:2", help="text:image torch threads, comma-separated")
    parser.add_argument("--role", choices=("text", "image"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return role_main(args.role, args.window)

    os.environ.setdefault("ATELIER_MODEL_CACHE", str(ROOT / "var" / "models"))
    log(f"{len(os.sched_getaffinity(0))} cores; window {args.window:.0f} s")
    load_before = os.getloadavg()[0]
    rows = []
    for split in args.splits.split(","):
        text_threads, image_threads = (int(part) for part in split.split(":"))
        row = {"text_threads": text_threads, "image_threads": image_threads,
               **measure(text_threads, image_threads, args.window)}
        rows.append(row)
    base_text, base_image = rows[0]["text_alone_tok_s"], rows[0]["image_alone_steps_s"]
    for row in rows:
        row["text_both_over_base"] = row["text_both_tok_s"] / base_text
        row["image_both_over_base"] = row["image_both_steps_s"] / base_image
        row["text_both_over_alone"] = row["text_both_tok_s"] / row["text_alone_tok_s"]
        row["image_both_over_alone"] = row["image_both_steps_s"] / row["image_alone_steps_s"]
        print(f"text {row['text_threads']} / image {row['image_threads']} threads: "
              f"text alone {row['text_alone_tok_s'] / base_text:.2f}x, with image {row['text_both_over_base']:.2f}x; "
              f"image alone {row['image_alone_steps_s'] / base_image:.2f}x, "
              f"with text {row['image_both_over_base']:.2f}x  "
              f"(1.00x = {base_text:.1f} tok/s, {base_image:.2f} steps/s alone at the first split)")
    # Other work on the machine skews every figure: the load average says how much there was.
    load = (load_before, os.getloadavg()[0])
    print(f"load average (1 min) {load[0]:.1f} before, {load[1]:.1f} after")
    print(json.dumps({"cores": len(os.sched_getaffinity(0)), "window_s": args.window, "load_average": load,
                      "splits": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

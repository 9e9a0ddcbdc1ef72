"""What a decode costs the other Python threads of its process: the engine in a child process or in this one.

    python bench/engine_gil.py [--streams 8] [--seconds 4]

A text worker's other threads (claims, prompt building, publishing chunks)
run beside the engine. OpenVINO's ``step()`` keeps the GIL for the whole
step, so with the pipeline in the worker's own process each of them waits a
step per GIL hand-over. For each placement (``ATELIER_TEXT_ENGINE_PROCESS``
1 and 0) this decodes ``--streams`` long greedy replies at once and, beside
them, measures how late a thread that sleeps 2 ms wakes up, and how many
small Python tasks (a JSON round trip, as a chunk's publication does) it
finishes per second. Each placement runs in a fresh subprocess; the last
line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(streams: int, seconds: float) -> dict:
    from generation.text import ChatMessage, DecodingParams, TextFinal, TextRequest, generate_text
    from generation.text.engine import text_engine
    from generation.text.types import DEFAULT_TEXT_MODEL

    text_engine(DEFAULT_TEXT_MODEL)

    def probe(duration: float) -> tuple[float, float, float]:
        lags, done = [], 0
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            started = time.perf_counter()
            time.sleep(0.002)
            lags.append(time.perf_counter() - started - 0.002)
            json.loads(json.dumps({"type": "chunk", "text": "x" * 40, "index": done}))
            done += 1
        return statistics.median(lags) * 1000, max(lags) * 1000, done / duration

    idle = probe(1.0)
    stop = threading.Event()
    tokens = [0]

    def decode(i: int) -> None:
        while not stop.is_set():
            request = TextRequest(messages=(ChatMessage("user", f"Write a long story about dragon number {i}."),),
                                  params=DecodingParams(max_new_tokens=200))
            for item in generate_text(request, should_stop=stop.is_set):
                if not isinstance(item, TextFinal):
                    tokens[0] += 1  # a delta per step, nearly always

    threads = [threading.Thread(target=decode, args=(i,)) for i in range(streams)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every stream in the batch
    tokens[0] = 0
    started = time.perf_counter()
    busy = probe(seconds)
    rate = tokens[0] / (time.perf_counter() - started)
    stop.set()
    for thread in threads:
        thread.join()
    return {"idle_lag_ms": round(idle[0], 2), "lag_ms_median": round(busy[0], 2), "lag_ms_max": round(busy[1], 1),
            "tasks_per_s": round(busy[2], 1), "idle_tasks_per_s": round(idle[2], 1), "decode_deltas_s": round(rate, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--child", choices=("0", "1"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.streams, args.seconds)))
        return 0
    results = {}
    for placement, flag in (("child", "1"), ("in_process", "0")):
        env = {**os.environ, "ATELIER_TEXT_ENGINE_PROCESS": flag}
        out = subprocess.run([sys.executable, __file__, "--child", flag, "--streams", str(args.streams),
                              "--seconds", str(args.seconds)], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
        results[placement] = json.loads(out.strip().splitlines()[-1])
        r = results[placement]
        print(f"engine {placement:>10}: a 2 ms sleep wakes {r['lag_ms_median']:.2f} ms late (max {r['lag_ms_max']:.1f}; "
              f"idle {r['idle_lag_ms']:.2f}), {r['tasks_per_s']:.0f} small tasks/s (idle {r['idle_tasks_per_s']:.0f}), "
              f"decode {r['decode_deltas_s']:.0f} deltas/s", file=sys.stderr)
    results["bench"] = "engine_gil"
    results["streams"] = args.streams
    results["lag_ratio_in_process_over_child"] = round(
        results["in_process"]["lag_ms_median"] / max(results["child"]["lag_ms_median"], 1e-3), 1)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

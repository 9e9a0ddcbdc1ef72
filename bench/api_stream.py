"""Streaming cost of the API: what an ``openai`` client sees against the engine alone.

    python bench/api_stream.py [--max-new-tokens 64] [--repeats 3]

Starts its own stack on free ports (a temporary database, an embedded
Redis, daphne and a Celery worker; the model cache is shared). It signs a
user up, makes a project and an API key on the project's API page, then for
each prompt (greedy, so both sides decode the same tokens) alternates:

- the stack: the official ``openai`` client streams a chat completion from
  ``/v1/chat/completions`` and times the chunks as they arrive;
- the engine alone: ``generate_text`` in this process, same prompt, same params.

tok/s is the decode rate after the first token, (completion tokens - 1) /
(last token - first token), the engine's own definition; the client's uses
chunk arrival times. The extra time to first token is the client's
request-to-first-content-chunk minus the engine's own time to first token
for the same job (as the worker recorded it): queueing, the worker taking
the job, Redis, the SSE view and HTTP. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import Stack, log, run_stack_bench  # noqa: E402
from bench.chat_stream import PROMPTS, decode_rate, engine_run, sign_up_and_start_conversation  # noqa: E402


def make_key(stack: Stack, session, project_id: str) -> str:
    """Create a key on the project's API page, as a person would, and read the secret it shows once."""
    path = f"/projects/{project_id}/api/"
    session.get(stack.base_url + path)
    response = session.post(stack.base_url + path, headers={"Referer": stack.base_url + path},
                            data={"csrfmiddlewaretoken": session.cookies["csrftoken"], "name": "bench"})
    response.raise_for_status()
    return re.search(r'<pre class="secret"><code>([^<]+)</code>', response.text).group(1)


def stack_run(client, prompt: str, max_new_tokens: int) -> dict:
    sent = time.perf_counter()
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": prompt}], temperature=0,
        max_tokens=max_new_tokens, stream=True, stream_options={"include_usage": True},
    )
    arrivals, text, chunk_id, usage = [], [], None, None
    for chunk in stream:
        chunk_id = chunk.id
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter())
            text.append(chunk.choices[0].delta.content)
    return {"sent": sent, "arrivals": arrivals, "text": "".join(text), "call_id": chunk_id.split("-", 1)[1],
            "usage": usage}


async def bench(stack: Stack, args) -> dict:
    from openai import OpenAI

    from generation.text import DEFAULT_TEXT_MODEL, load_text_model

    session, _ = sign_up_and_start_conversation(stack.base_url, args.max_new_tokens)
    page = session.get(stack.base_url + "/").text
    project_id = re.search(r"/projects/(\d+)/", page).group(1)
    client = OpenAI(base_url=stack.base_url + "/v1", api_key=make_key(stack, session, project_id), max_retries=0)
    load_text_model(DEFAULT_TEXT_MODEL)
    db = sqlite3.connect(stack.env["ATELIER_SQLITE_PATH"])

    log("warming up both sides")
    stack_run(client, PROMPTS[0], 8)
    engine_run(PROMPTS[0], 8)

    rows = []
    for repeat in range(args.repeats):
        for prompt in PROMPTS:
            run = stack_run(client, prompt, args.max_new_tokens)
            alone = engine_run(prompt, args.max_new_tokens)
            tokens, worker_rate, worker_ttft, stored = db.execute(
                "select completion_tokens, tokens_per_second, time_to_first_token, text from api_textjob "
                "where call_id=?", (run["call_id"],),
            ).fetchone()
            assert run["text"] == stored, "streamed text differs from the stored text"
            assert run["usage"].completion_tokens == tokens
            row = {
                "client_tok_s": decode_rate(tokens, run["arrivals"][0], run["arrivals"][-1]),
                "client_ttft": run["arrivals"][0] - run["sent"],
                "worker_tok_s": worker_rate,
                "worker_ttft": worker_ttft,
                "engine_tok_s": alone.tokens_per_second,
                "engine_ttft": alone.time_to_first_token,
                "same_text": alone.text == stored,
                "chunks": len(run["arrivals"]),
                "tokens": tokens,
            }
            row["ttft_overhead"] = row["client_ttft"] - worker_ttft
            rows.append(row)
            log(f"[{repeat}] {tokens} tokens in {row['chunks']} chunks: client {row['client_tok_s']:.1f} tok/s, "
                f"engine alone {row['engine_tok_s']:.1f} tok/s, in worker {worker_rate:.1f}; "
                f"ttft client {row['client_ttft'] * 1000:.0f} ms, engine in worker {worker_ttft * 1000:.0f} ms")

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    client_rate, engine_rate = median("client_tok_s"), median("engine_tok_s")
    overhead_ms = median("ttft_overhead") * 1000
    return {
        "bench": "api_stream",
        "model": DEFAULT_TEXT_MODEL,
        "runs": len(rows),
        "max_new_tokens": args.max_new_tokens,
        "client": {"tok_s": round(client_rate, 2), "ttft_ms": round(median("client_ttft") * 1000, 1)},
        "engine": {"tok_s": round(engine_rate, 2), "ttft_ms": round(median("engine_ttft") * 1000, 1)},
        "engine_in_worker": {"tok_s": round(median("worker_tok_s"), 2), "ttft_ms": round(median("worker_ttft") * 1000, 1)},
        "tok_s_ratio": round(client_rate / engine_rate, 3),
        "tok_s_ratio_paired": round(statistics.median(r["client_tok_s"] / r["engine_tok_s"] for r in rows), 3),
        "tok_s_ratio_vs_worker": round(client_rate / median("worker_tok_s"), 3),
        "ttft_overhead_ms": round(overhead_ms, 1),
        "ttft_overhead_ms_max": round(max(row["ttft_overhead"] for row in rows) * 1000, 1),
        "chunks_per_reply": statistics.median(row["chunks"] for row in rows),
        "same_text_as_engine": all(row["same_text"] for row in rows),
        "goals_met": {"tok_s_ratio>=0.97": client_rate / engine_rate >= 0.97, "ttft_overhead_ms<=50": overhead_ms <= 50},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args(argv)
    return run_stack_bench(args, name="api", workers=("text",), bench=bench)


if __name__ == "__main__":
    raise SystemExit(main())

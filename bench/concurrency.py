"""A team at once, through the whole stack: daphne, Redis, the workers, websocket clients.

    python bench/concurrency.py [--max-new-tokens 64] [--repeats 3] [--one-worker]

Starts its own stack (see ``_stack.py``): a text worker and an image worker
(``python -m webapp.worker text`` and ``image``, as ``make run`` does), or
one worker on every queue with ``--one-worker`` (the old setup). People are made in the database, log in
over HTTP, post the chat composer and the studio form as htmx does, and watch
the replies stream on the conversation socket. It measures whatever text engine the worker runs. Figures:

1. one chat: streamed tok/s at the client, over ``transformers`` ``generate``
   (the engine's dtype, bf16 where the CPU has it) in this process, same prompt;
2. 8 chats sent at once by 8 people: aggregate tok/s over one chat alone
   (tokens / (last chunk - send), the same definition on both sides);
3. 8 chats at once: median time to first token;
   (1-3 run ``--repeats`` rounds, 3 by default, after a warm-up that includes one
   batch of 8; each ratio is taken within its round and the median round is
   reported with the range)
4. while a 4-image, 50-step job runs: a chat's time to first token;
5. while a 4-image job runs (chats streaming beside it): its s/step over the same job alone;
6. 5 people x 10 image jobs (queued while another job runs): the rank at
   which each person's first job starts (fair order: <= 5).

Each figure is printed; the last line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import Stack, log, run_stack_bench  # noqa: E402
from bench.chat_stream import PROMPTS, Socket, composer_form, http_send  # noqa: E402
from bench.studio_steps import Browser  # noqa: E402

PASSWORD = "bench horse battery staple"  # noqa: S105 - throwaway users in a temporary database
IMAGE = {"prompt": "a red circle on a blue square", "negative_prompt": "", "model": "atelier-shapes",
         "scheduler": "dpmpp_2m", "guidance_scale": "3", "seed": "1"}


SETUP = """
import json
from webapp.accounts.models import User
from webapp.chat import services
from webapp.chat.params import ReplySettings, default_model_name, default_params
from webapp.workspaces.models import Membership, Project, Role, Team
team = Team.objects.create(name="Bench")
users = [User.objects.create_user(username=f"person{n}", password=PASSWORD) for n in range(COUNT)]
project = Project.objects.create(team=team, name="Bench", created_by=users[0])
conversations = []
for n, user in enumerate(users):
    membership = Membership.objects.create(team=team, user=user, role=Role.OWNER if n == 0 else Role.MEMBER)
    settings = ReplySettings(model_name=default_model_name(), params=default_params())
    conversations.append(services.conversation_create(project=project, actor=membership, reply_settings=settings).pk)
print(json.dumps({"project": project.pk, "conversations": conversations}))
"""


def setup_people(stack: Stack, count: int) -> tuple[list[Browser], int, list[int]]:
    """``count`` people in one team and project (made by ``manage.py shell``), each logged in over HTTP
    with a conversation. Not in this process: Django's app loading would pick Twisted for autobahn."""
    code = SETUP.replace("PASSWORD", repr(PASSWORD)).replace("COUNT", str(count))
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=stack.env, check=True,
                         capture_output=True, text=True).stdout
    made = json.loads(out.strip().splitlines()[-1])
    browsers = []
    for n in range(count):
        browser = Browser(stack.base_url)
        browser.session.get(stack.base_url + "/accounts/login/")
        browser.post("/accounts/login/", {"username": f"person{n}", "password": PASSWORD})
        browsers.append(browser)
    return browsers, made["project"], made["conversations"]


def db(stack: Stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.env["ATELIER_SQLITE_PATH"], timeout=30)


@dataclass
class Person:
    """One person at a chat page: their HTTP session, their conversation and its socket."""

    browser: Browser
    project_id: int
    conversation_id: int
    form: dict[str, str]
    socket: Socket


async def chat(stack: Stack, person: Person, prompt: str, max_new_tokens: int) -> dict[str, Any]:
    """Send one prompt as a new thread over HTTP, as the page does (in a thread, so every socket keeps
    reading meanwhile); the send time, chunk arrivals and the stored token count."""
    sent_wall = time.time()
    sent = time.perf_counter()
    message_id = await asyncio.to_thread(http_send, person.browser.session, stack.base_url, person.project_id,
                                         person.conversation_id, person.form, prompt, max_new_tokens)
    socket, arrivals = person.socket, []
    while True:
        at, event = await socket.receive(timeout=600)
        if event.get("message") == message_id and event["type"] == "chunk":
            arrivals.append(at)
        elif event.get("message") == message_id and event["type"] == "end":
            with db(stack) as conn:
                (tokens,) = conn.execute("select completion_tokens from chat_message where id=?", (message_id,)).fetchone()
            return {"sent": sent, "first": arrivals[0], "last": arrivals[-1], "tokens": int(tokens or 0),
                    "message": message_id, "sent_wall": sent_wall}


def first_token_lags(stack: Stack, runs: list[dict[str, Any]]) -> list[tuple[float, float, float, float]]:
    """Per chat, where the time to first token went: send to claim, claim to the engine (the prompt
    built, tokenized and submitted), the engine's own first token, and from there to the client."""
    def wall(text: str) -> float:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    parts = []
    with db(stack) as conn:
        for run in runs:
            started, finished, elapsed, ttft = conn.execute(
                "select started_at, finished_at, elapsed, time_to_first_token from chat_message where id=?",
                (run["message"],)).fetchone()
            submitted = wall(finished) - (elapsed or 0)  # the engine's clock starts at submit
            first = submitted + (ttft or 0)
            client = run["sent_wall"] + (run["first"] - run["sent"])
            parts.append((wall(started) - run["sent_wall"], submitted - wall(started), ttft or 0, client - first))
    return parts


def rate(runs: list[dict[str, Any]]) -> float:
    return sum(r["tokens"] for r in runs) / (max(r["last"] for r in runs) - min(r["sent"] for r in runs))


def generate_baseline(prompt: str, max_new_tokens: int) -> float:
    """tok/s of plain ``model.generate`` (greedy) on the default model in bf16 (what Atelier ran
    before the engine), measured the same way (from the call)."""
    import torch

    from bench.text_engine_batch import load

    loaded = load("transformers", "bfloat16")  # this process only: the stack's workers are already running
    ids = loaded.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)["input_ids"].to(loaded.model.device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = loaded.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, min_new_tokens=max_new_tokens)
    return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - start)


@dataclass
class JobRow:
    pk: int
    status: str
    steps_done: int
    seconds_per_step: float | None


def job_rows(stack: Stack, ids: list[int]) -> list[JobRow]:
    """The jobs in the order they started."""
    marks = ",".join("?" * len(ids))
    with db(stack) as conn:
        rows = conn.execute(f"select id, status, steps_done, seconds_per_step from studio_job where id in ({marks}) "  # noqa: S608
                            "order by started_at, id", ids).fetchall()
    return [JobRow(*row) for row in rows]


async def wait_jobs(stack: Stack, ids: list[int], *, running: bool = False, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = job_rows(stack, ids)
        # Running with a step done, or already past it (a short job ends between two polls).
        if running and any((r.status == "running" and r.steps_done > 0) or r.status in ("done", "failed", "stopped")
                           for r in rows):
            return
        if not running and all(r.status in ("done", "failed", "stopped") for r in rows):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("image jobs did not get there")


def submit(browser: Browser, project_id: int, **params: Any) -> int:
    return browser.submit(project_id, {**IMAGE, **params})[0]


async def bench(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    try:
        return await _bench(stack, args)
    except BaseException:
        import traceback

        log(traceback.format_exc())  # before the stack stops: a stuck shutdown must not hide it
        raise


async def _bench(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    # A thread per person's send: the default pool (cores + 4) would hold back some of 8 sends at once.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=16))
    browsers, project_id, conversations = setup_people(stack, 8)
    form = composer_form(browsers[0].session, f"{stack.base_url}/projects/{project_id}/chat/")
    people = []
    for browser, conversation in zip(browsers, conversations, strict=True):
        socket = Socket()
        await socket.connect(stack.base_url, f"/ws/projects/{project_id}/chat/{conversation}/",
                             f"sessionid={browser.session.cookies['sessionid']}")
        people.append(Person(browser, project_id, conversation, form, socket))
    n, size = args.max_new_tokens, {"width": str(args.size), "height": str(args.size)}
    log("warming up (one chat, then 8 at once: the engine's first full batch allocates its cache)")
    await chat(stack, people[0], PROMPTS[0], 8)
    await asyncio.gather(*(chat(stack, s, PROMPTS[i % len(PROMPTS)], 8) for i, s in enumerate(people)))
    first = submit(browsers[0], project_id, steps="2", num_images="1", **size)
    await wait_jobs(stack, [first])

    # Figures 1-3, --repeats rounds; each round's ratios are taken within the round, and the
    # median round is reported, with the range.
    rounds = []
    for round_number in range(args.repeats):
        log(f"round {round_number + 1} of {args.repeats}")
        log("1. one chat against transformers generate")
        alone = [await chat(stack, people[0], prompt, n) for prompt in PROMPTS[:2]]
        one_rate = statistics.median(rate([r]) for r in alone)
        # In a thread: a loop blocked for longer than daphne's ping timeout (its first load converts the
        # GGUF: about a minute) loses every socket, and the next chats never hear their end.
        baseline = statistics.median([await asyncio.to_thread(generate_baseline, prompt, n) for prompt in PROMPTS[:2]])
        log(f"   one chat {one_rate:.1f} tok/s at the client; transformers generate {baseline:.1f} tok/s: "
            f"{one_rate / baseline:.2f}x")

        log("2-3. eight chats at once")
        eight = await asyncio.gather(*(chat(stack, s, PROMPTS[i % len(PROMPTS)], n) for i, s in enumerate(people)))
        eight_rate = rate(list(eight))
        ttft8 = statistics.median(r["first"] - r["sent"] for r in eight)
        one_ttft = statistics.median(r["first"] - r["sent"] for r in alone)
        log(f"   aggregate {eight_rate:.1f} tok/s = {eight_rate / one_rate:.2f}x one chat; median ttft {ttft8:.2f} s "
            f"(one chat alone {one_ttft:.2f} s)")
        lags = first_token_lags(stack, list(eight))
        log("   per chat, send->claim + claim->engine + engine first token + ->client: "
            + ", ".join("+".join(f"{part:.2f}" for part in chat_parts) for chat_parts in lags))
        rounds.append({"one_rate": one_rate, "baseline": baseline, "eight_rate": eight_rate, "ttft8": ttft8,
                       "one_ttft": one_ttft, "one_over_generate": one_rate / baseline,
                       "eight_over_one": eight_rate / one_rate})

    def median_of(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def range_of(key: str) -> list[float]:
        return [round(min(r[key] for r in rounds), 2), round(max(r[key] for r in rounds), 2)]

    one_rate, baseline, eight_rate = median_of("one_rate"), median_of("baseline"), median_of("eight_rate")
    ttft8, one_ttft = median_of("ttft8"), median_of("one_ttft")
    one_over_generate, eight_over_one = median_of("one_over_generate"), median_of("eight_over_one")
    log(f"   over {args.repeats} rounds (median [range]): one chat {one_over_generate:.2f}x generate "
        f"{range_of('one_over_generate')}; 8 at once {eight_over_one:.2f}x one {range_of('eight_over_one')}; "
        f"median ttft {ttft8:.2f} s {range_of('ttft8')}")

    if args.chats_only:
        for person in people:
            person.socket.protocol.sendClose()
        return {"bench": "concurrency", "chats_only": True, "rounds": args.repeats,
                "one_chat_over_generate": round(one_over_generate, 2), "eight_over_one": round(eight_over_one, 2),
                "eight_over_one_range": range_of("eight_over_one"), "eight_chats_median_ttft_s": round(ttft8, 2),
                "eight_chats_median_ttft_s_range": range_of("ttft8")}

    log("4-5. chats beside a 4-image, 50-step job")
    image = {"steps": "50", "num_images": "4", **size}
    job_alone = submit(browsers[1], project_id, **image)
    await wait_jobs(stack, [job_alone])
    job_loaded = submit(browsers[1], project_id, **image)
    await wait_jobs(stack, [job_loaded], running=True)
    beside = [await chat(stack, people[2], PROMPTS[1], n)]
    while job_rows(stack, [job_loaded])[0].status == "running":
        beside.append(await chat(stack, people[2], PROMPTS[len(beside) % len(PROMPTS)], n))
    ttft_beside = beside[0]["first"] - beside[0]["sent"]
    s_alone, s_loaded = (r.seconds_per_step for r in sorted(job_rows(stack, [job_alone, job_loaded]), key=lambda r: r.pk))
    log(f"   chat ttft while it runs {ttft_beside:.2f} s ({len(beside)} chats beside it); s/step "
        f"{s_loaded:.3f} beside chats against {s_alone:.3f} alone: {s_loaded / s_alone:.2f}x")

    log("6. five people x ten image jobs")
    # Long enough to hold the image worker while the 50 jobs are posted.
    blocker = submit(browsers[0], project_id, steps="150", num_images="2", **size)
    await wait_jobs(stack, [blocker], running=True)
    queued = {p: [submit(browsers[p], project_id, steps="2", num_images="1", width="32", height="32")
                  for _ in range(10)] for p in range(1, 6)}
    ids = [pk for pks in queued.values() for pk in pks]
    await wait_jobs(stack, [*ids, blocker])
    order = [row.pk for row in job_rows(stack, ids)]
    first_ranks = [min(order.index(pk) for pk in pks) + 1 for pks in queued.values()]
    log(f"   rank at which each person's first job started: {first_ranks}")
    for person in people:
        person.socket.protocol.sendClose()

    from generation.text import DEFAULT_TEXT_MODEL, text_dtype_name

    figures = {
        "one_chat_tok_s": round(one_rate, 1), "generate_tok_s": round(baseline, 1),
        "one_chat_over_generate": round(one_over_generate, 2),
        "one_chat_over_generate_range": range_of("one_over_generate"),
        "eight_chats_tok_s": round(eight_rate, 1), "eight_over_one": round(eight_over_one, 2),
        "eight_over_one_range": range_of("eight_over_one"),
        "eight_chats_median_ttft_s": round(ttft8, 2), "eight_chats_median_ttft_s_range": range_of("ttft8"),
        "one_chat_ttft_s": round(one_ttft, 2), "rounds": args.repeats,
        "ttft_beside_image_job_s": round(ttft_beside, 2),
        "image_s_step_loaded_over_alone": round(s_loaded / s_alone, 2),
        "image_s_step_alone": round(s_alone, 3), "image_s_step_loaded": round(s_loaded, 3),
        "first_job_ranks": first_ranks, "first_job_rank_max": max(first_ranks),
    }
    goals = {
        "one_chat_over_generate>=2.5": figures["one_chat_over_generate"] >= 2.5,
        "eight_over_one>=4": figures["eight_over_one"] >= 4.0,
        "eight_chats_median_ttft_s<=1": ttft8 <= 1.0,
        "ttft_beside_image_job_s<=1": ttft_beside <= 1.0,
        "image_s_step_loaded_over_alone<=1.6": s_loaded / s_alone <= 1.6,
        "first_job_rank_max<=5": max(first_ranks) <= 5,
    }
    return {"bench": "concurrency", "model": DEFAULT_TEXT_MODEL, "dtype": text_dtype_name(),
            "workers": "one" if args.one_worker else "text+image", "max_new_tokens": n, "image_size": args.size,
            **figures, "goals_met": goals}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of figures 1-3 (the median is reported)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels for the 4-image job")
    parser.add_argument("--one-worker", action="store_true", help="one worker on every queue (the old setup)")
    parser.add_argument("--chats-only", action="store_true", help="figures 1-3 only (no image jobs)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args(argv)
    workers = ("all",) if args.one_worker else ("text", "image")
    return run_stack_bench(args, name="concurrency", workers=workers, bench=bench)


if __name__ == "__main__":
    raise SystemExit(main())

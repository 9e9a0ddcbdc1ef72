"""Streaming cost of chat: what a websocket client sees against the engine alone.

    python bench/chat_stream.py [--max-new-tokens 64] [--repeats 3]

Starts its own stack on free ports: a temporary database and var folder, an
embedded Redis, daphne and a Celery worker (the model cache is shared with
the repository's ``var/models``). It signs a user up and logs in over HTTP,
starts a conversation, then for each prompt (greedy, so both sides decode
the same tokens) alternates:

- the stack: the prompt is posted over HTTP as the page posts it (the
  composer form, over htmx), and a websocket client (autobahn) on the
  conversation socket times the chunks as they arrive;
- the engine alone: ``generate_text`` in this process, same prompt, same params.

tok/s on both sides is the decode rate after the first token,
(completion tokens - 1) / (last token - first token), the engine's own
definition; the client's uses chunk arrival times. The time-to-first-token
overhead is the client's send-to-first-chunk minus the engine's own time to
first token for the same reply (as the worker recorded it). The last line is
one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a bicycle works to a ten-year-old.",
    "List some tips for staying productive when working from home, with a sentence on each.",
    "Describe the water cycle in detail.",
)
PASSWORD = "bench horse battery staple"  # noqa: S105 - a throwaway user in a temporary database


from bench._stack import Stack, log, run_stack_bench  # noqa: E402


def sign_up_and_start_conversation(base_url: str, max_new_tokens: int):
    """Sign up and log in over HTTP, make a team and a project, start a conversation."""
    session, _, conversation_id, _ = sign_up_and_start_chat(base_url, max_new_tokens)
    return session, conversation_id


def sign_up_with_project(base_url: str):
    """Sign up and log in over HTTP, make a team and a project: the session, a form poster and the project's id."""
    import requests

    session = requests.Session()

    def post(path: str, data: dict) -> requests.Response:
        session.get(base_url + path)
        data = {"csrfmiddlewaretoken": session.cookies["csrftoken"], **data}
        response = session.post(base_url + path, data=data, headers={"Referer": base_url + path})
        response.raise_for_status()
        return response

    post("/accounts/signup/", {"username": "bench", "password1": PASSWORD, "password2": PASSWORD})
    session.cookies.clear()  # and log in again, as a returning user would
    post("/accounts/login/", {"username": "bench", "password": PASSWORD})
    team_url = post("/teams/new/", {"name": "Bench"}).url
    team_id = re.search(r"/teams/(\d+)/", team_url).group(1)
    project_url = post(f"/teams/{team_id}/projects/new/", {"name": "Bench"}).url
    return session, post, re.search(r"/projects/(\d+)/", project_url).group(1)


def sign_up_and_start_chat(base_url: str, max_new_tokens: int):
    """``sign_up_and_start_conversation``, also giving the project's id and the composer's form."""
    session, post, project_id = sign_up_with_project(base_url)
    chat = f"/projects/{project_id}/chat/"
    form = composer_form(session, base_url + chat)
    conversation_url = post(chat, {**form, "text": "Hello!", "max_new_tokens": str(max_new_tokens)}).url
    conversation_id = int(re.search(r"/chat/(\d+)/", conversation_url).group(1))
    return session, int(project_id), conversation_id, form


def composer_form(session, page_url: str) -> dict[str, str]:
    """The chat composer's fields as a chat page fills them in, set for greedy decoding."""
    form = dict(re.findall(r'name="(\w+)"[^>]*value="([^"]*)"', session.get(page_url).text))
    form.pop("csrfmiddlewaretoken", None)  # each session sends its own (the X-CSRFToken header)
    form.update({"strategy": "greedy", "stop": "", "seed": "", "system": "", "model": "smollm2-135m-instruct",
                 "parent": "", "template_use": ""})
    return form


def http_send(session, base_url: str, project_id: int, conversation_id: int, form: dict[str, str], prompt: str,
              max_new_tokens: int) -> int:
    """Send ``prompt`` as a new thread the way the page does (the composer posted over htmx); the new reply's id,
    read from the thread the server answers with (its only live reply)."""
    path = f"/projects/{project_id}/chat/{conversation_id}/send/"
    # HX-Target as htmx sends it: the composer targets #thread, so the server renders only what the send added.
    headers = {"Referer": base_url + path, "X-CSRFToken": session.cookies["csrftoken"], "HX-Request": "true",
               "HX-Target": "thread"}
    data = {**form, "text": prompt, "max_new_tokens": str(max_new_tokens)}
    response = session.post(base_url + path, data=data, headers=headers)
    response.raise_for_status()
    match = re.search(r'data-live-message="(\d+)"', response.text)
    if not match:
        raise RuntimeError(f"the composer refused the send: {re.findall(r'class=.error[^>]*>([^<]+)', response.text)}")
    return int(match.group(1))


class Socket:
    """A small asyncio websocket client on autobahn that only listens: JSON events, arrival times kept."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.protocol = None

    async def connect(self, base_url: str, path: str, cookie: str) -> None:
        from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

        queue, opened = self.queue, asyncio.get_running_loop().create_future()

        class Protocol(WebSocketClientProtocol):
            def onOpen(self) -> None:
                opened.set_result(self)

            def onMessage(self, payload: bytes, is_binary: bool) -> None:
                queue.put_nowait((time.perf_counter(), json.loads(payload)))

            def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:
                queue.put_nowait((time.perf_counter(), {"type": "closed", "code": code, "reason": reason}))

        host, port = base_url.removeprefix("http://").split(":")
        factory = WebSocketClientFactory(f"ws://{host}:{port}{path}", origin=base_url, headers={"Cookie": cookie})
        factory.protocol = Protocol
        await asyncio.get_running_loop().create_connection(factory, host, int(port))
        self.protocol = await asyncio.wait_for(opened, 10)

    async def receive(self, timeout: float = 120):
        """The next event; a closed socket raises at once rather than leaving its reader waiting for events
        that can no longer come. (Keep the event loop free: a loop blocked for longer than daphne's ping
        timeout, 30 s, loses every socket.)"""
        at, event = await asyncio.wait_for(self.queue.get(), timeout)
        if event.get("type") == "closed":
            raise ConnectionError(f"the server closed the socket (code {event['code']}: {event['reason']})")
        return at, event


async def stack_run(socket: Socket, send: Callable[[], int]) -> dict:
    """Post a send over HTTP (``send`` returns the reply's id; in a thread, so the socket keeps
    reading and stamping arrivals meanwhile), then take that reply's chunks from the socket."""
    sent_at = time.perf_counter()
    message_id = await asyncio.to_thread(send)
    arrivals, text = [], []
    while True:
        at, event = await socket.receive()
        if event.get("message") == message_id and event["type"] == "chunk":
            arrivals.append(at)
            text.append(event["text"])
        elif event.get("message") == message_id and event["type"] == "end":
            return {"id": message_id, "sent": sent_at, "arrivals": arrivals, "text": "".join(text), "status": event["status"]}


def engine_run(prompt: str, max_new_tokens: int):
    from generation.text import ChatMessage, DecodingParams, TextFinal, TextRequest, generate_text

    request = TextRequest(messages=(ChatMessage("user", prompt),),
                          params=DecodingParams(strategy="greedy", max_new_tokens=max_new_tokens))
    for item in generate_text(request):
        if isinstance(item, TextFinal):
            return item
    raise RuntimeError("no final record")


def decode_rate(tokens: int, first: float, last: float) -> float:
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


async def bench(stack: Stack, args) -> dict:
    from generation.text import DEFAULT_TEXT_MODEL, load_text_model

    session, project_id, conversation_id, form = sign_up_and_start_chat(stack.base_url, args.max_new_tokens)
    socket = Socket()
    cookie = f"sessionid={session.cookies['sessionid']}"
    await socket.connect(stack.base_url, f"/ws/projects/{project_id}/chat/{conversation_id}/", cookie)

    def send(prompt: str, max_new_tokens: int) -> Callable[[], int]:
        return partial(http_send, session, stack.base_url, project_id, conversation_id, form, prompt, max_new_tokens)
    load_text_model(DEFAULT_TEXT_MODEL)
    db = sqlite3.connect(stack.env["ATELIER_SQLITE_PATH"])

    log("warming up both sides")
    await stack_run(socket, send(PROMPTS[0], 8))
    engine_run(PROMPTS[0], 8)

    rows = []
    for repeat in range(args.repeats):
        for prompt in PROMPTS:
            run = await stack_run(socket, send(prompt, args.max_new_tokens))
            alone = engine_run(prompt, args.max_new_tokens)
            tokens, worker_rate, worker_ttft, stored = db.execute(
                "select completion_tokens, tokens_per_second, time_to_first_token, text from chat_message where id=?",
                (run["id"],),
            ).fetchone()
            assert run["status"] == "done" and run["text"] == stored, "streamed text differs from the stored text"
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
                f"ttft client {row['client_ttft'] * 1000:.0f} ms, engine in worker {worker_ttft * 1000:.0f} ms, "
                f"alone {row['engine_ttft'] * 1000:.0f} ms")
    socket.protocol.sendClose()

    def median(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    client_rate, engine_rate = median("client_tok_s"), median("engine_tok_s")
    overhead_ms = median("ttft_overhead") * 1000
    return {
        "bench": "chat_stream",
        "model": DEFAULT_TEXT_MODEL,
        "runs": len(rows),
        "max_new_tokens": args.max_new_tokens,
        "client": {"tok_s": round(client_rate, 2), "ttft_ms": round(median("client_ttft") * 1000, 1)},
        "engine": {"tok_s": round(engine_rate, 2), "ttft_ms": round(median("engine_ttft") * 1000, 1)},
        "engine_in_worker": {"tok_s": round(median("worker_tok_s"), 2), "ttft_ms": round(median("worker_ttft") * 1000, 1)},
        "tok_s_ratio": round(client_rate / engine_rate, 3),
        # Each stack run against the engine run right after it: less sensitive to a busy neighbour.
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
    return run_stack_bench(args, name="chat", workers=("text",), bench=bench)


if __name__ == "__main__":
    raise SystemExit(main())

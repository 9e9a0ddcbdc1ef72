"""Streamed replies in real Chromium, with chunks whose text and timing the test controls.

The chunks go out through the worker's own streaming code (``ReplyStream``: the Redis log
and the channel layer), to a reply claimed as if by a worker, and reach the page through
daphne and the real socket. Checks: a ``<script>`` split across two chunks stays inert
(a ``window.__xss`` probe never fires), and a reload in the middle of a stream loses no
chunk and doubles none.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.factories import PASSWORD, membership_of
from tests.helpers import short_settings
from webapp.core import jobs
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def _log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")


def _running_reply(project: Any, user: Any, no_enqueue: Any) -> Any:
    """A reply claimed as a worker claims it; no worker runs it: the test streams it."""
    from webapp.chat import services

    membership = membership_of(user)
    conversation = services.conversation_create(project=project, actor=membership,
                                                reply_settings=short_settings())
    reply = services.message_send(conversation=conversation, actor=membership, text="Say something.",
                                  parent=None, reply_settings=short_settings())
    assert jobs.job_claim(kind="chat.reply", job_id=reply.pk, worker="streaming-test@here")
    no_enqueue.clear()
    reply.refresh_from_db()
    return reply


def _stream(reply: Any) -> Any:
    from webapp.chat.stream import ReplyStream

    return ReplyStream(message=reply, group=reply.conversation.group_name, interval=0.0, max_pending=1)


def _finish(reply: Any, stream: Any, text: str) -> None:
    assert jobs.job_finish(kind="chat.reply", job_id=reply.pk, status=JobStatus.DONE,
                           values={"text": text, "finish_reason": "stop", "completion_tokens": 1})
    stream.end(status=JobStatus.DONE)


def _live_text(page: Any, reply: Any) -> str:
    live = page.locator(f"#msg-{reply.pk} .stream-text")
    return (live.text_content() or "") if live.count() else ""


def _wait_text(page: Any, reply: Any, check: Any, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _live_text(page, reply)
        if check(text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"the live text never got there; it shows {_live_text(page, reply)!r}")


def _open(page: Any, asgi_server: str, reply: Any) -> None:
    page.goto(asgi_server + reply.conversation.get_absolute_url())
    page.locator(f"#msg-{reply.pk}[data-live-message]").wait_for()


SPLIT_SCRIPT = ["Before <scr", "ipt>window.__xss=1</scr", "ipt> between <img src=x one",
                'rror="window.__xss=2"> after']


def test_a_script_split_across_two_streamed_chunks_stays_inert(asgi_server, new_page, project, bob, no_enqueue):
    reply = _running_reply(project, bob, no_enqueue)
    page = new_page()
    _log_in(page, asgi_server, "bob")
    _open(page, asgi_server, reply)
    stream = _stream(reply)
    for chunk in SPLIT_SCRIPT:
        stream.write(chunk)
        time.sleep(0.1)  # one chunk at a time, as a worker sends them
    stream.close()
    whole = "".join(SPLIT_SCRIPT)
    assert _wait_text(page, reply, lambda text: text.endswith("after")) == whole  # shown as text, not markup
    assert page.locator(f"#msg-{reply.pk} script, #msg-{reply.pk} img").count() == 0
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None

    _finish(reply, stream, whole)  # the page swaps in the finished reply, rendered by the server
    page.locator(f"#msg-{reply.pk}.status-done").wait_for(timeout=30_000)
    assert "window.__xss=1" in page.locator(f"#msg-{reply.pk}").inner_text()
    time.sleep(0.5)
    assert page.evaluate("window.__xss") is None


CHUNKS = [f"t{index:03d} " for index in range(80)]


def test_a_reload_mid_stream_loses_no_chunk_and_doubles_none(asgi_server, new_page, project, bob, no_enqueue):
    reply = _running_reply(project, bob, no_enqueue)
    page = new_page()
    _log_in(page, asgi_server, "bob")
    _open(page, asgi_server, reply)
    stream = _stream(reply)
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            for chunk in CHUNKS:
                stream.write(chunk)
                time.sleep(0.05)
            stream.close()
        except BaseException as error:  # reported by the test below
            failed.append(error)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    _wait_text(page, reply, lambda text: "t015 " in text)
    page.reload()  # chunks keep coming while the page loads and its socket reconnects
    page.locator(f"#msg-{reply.pk}[data-live-message]").wait_for()
    producer.join(timeout=60)
    assert not failed, failed
    whole = "".join(CHUNKS)
    shown = _wait_text(page, reply, lambda text: "t079 " in text)
    time.sleep(0.5)  # anything doubled late would show now
    assert _live_text(page, reply) == shown == whole
    _finish(reply, stream, whole)
    page.locator(f"#msg-{reply.pk}.status-done").wait_for(timeout=30_000)

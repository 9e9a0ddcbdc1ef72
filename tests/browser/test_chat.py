"""Chat in a real browser: daphne, a real worker with the real default model, chromium."""
from __future__ import annotations

import os
import time

import pytest

from tests.factories import PASSWORD
from webapp.chat.models import Message
from webapp.core.jobs import JobStatus as Status

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _send(page, text: str, max_new_tokens: int) -> None:
    composer = page.locator("form.composer")
    composer.locator("summary").first.click()
    composer.get_by_label("Max new tokens").fill(str(max_new_tokens))
    box = composer.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def _live_text(page):
    return page.locator("[data-live-message] .stream-text").last


def _wait_for_text(page, min_chars: int = 1, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = page.locator("[data-live-message] .stream-text")
        if live.count():
            text = live.last.text_content() or ""
            if len(text) >= min_chars:
                return text
        time.sleep(0.05)
    raise AssertionError("no streamed text appeared")


def _last_reply():
    return Message.objects.filter(role="assistant").latest("id")


def test_send_watch_stop_and_reload_mid_reply(asgi_server, celery_worker, new_page, project, alice, bob):
    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.get_by_role("link", name="Launch").first.click()
    page.get_by_role("link", name="Chat").click()

    # Send from the chat index (Enter sends) and watch the reply grow while it streams.
    _send(page, "Write a short poem about the sea.", 60)
    first = _wait_for_text(page)
    grown = _wait_for_text(page, min_chars=len(first) + 5)
    assert grown.startswith(first)
    reply = _last_reply()
    page.locator(f"#msg-{reply.pk}.status-done").wait_for(timeout=60_000)
    reply.refresh_from_db()
    assert reply.status == Status.DONE
    assert page.locator(f"#msg-{reply.pk} .md").inner_text().strip()[:20] in reply.text
    assert reply.text.split()[0] in page.locator(f"#msg-{reply.pk}").inner_text()
    assert f"{reply.completion_tokens} tokens" in page.locator(f"#msg-{reply.pk} .meta").inner_text()

    # A teammate watching the conversation sees the next reply arrive without reloading.
    watcher = new_page()
    _log_in(watcher, asgi_server, "alice")
    watcher.goto(page.url)
    watcher.locator(f"#msg-{reply.pk}").wait_for()

    # Stop one reply: it ends "stopped" with the text it had.
    _send(page, "Tell me a very long story about a lighthouse keeper.", 400)
    _wait_for_text(page, min_chars=10)
    watcher.locator(f"#msg-{_last_reply().pk}").wait_for(timeout=10_000)
    page.locator("[data-live-message]").last.get_by_role("button", name="Stop").click()
    stopped = _last_reply()
    # The send appended to the thread: it continued the first reply (the composer's parent came with the
    # send's answer) and the composer went back to empty, its settings closed.
    assert Message.objects.get(pk=stopped.parent_id).parent_id == reply.pk
    assert page.locator("form.composer").get_by_label("Message").input_value() == ""
    assert page.locator("form.composer details.settings[open]").count() == 0
    page.locator(f"#msg-{stopped.pk}.status-stopped").wait_for(timeout=10_000)
    stopped.refresh_from_db()
    assert stopped.status == Status.STOPPED and stopped.text
    assert "Stopped" in page.locator(f"#msg-{stopped.pk}").inner_text()

    # Reload in the middle of a reply: the page replays it from the log and shows all of it.
    _send(page, "Describe a busy harbour in the morning.", 120)
    _wait_for_text(page, min_chars=15)
    final = _last_reply()
    assert final.status == Status.RUNNING
    page.reload()
    replayed = _wait_for_text(page, min_chars=15)  # replayed from the log, from its first chunk
    page.locator(f"#msg-{final.pk}.status-done").wait_for(timeout=120_000)
    final.refresh_from_db()
    assert final.text.startswith(replayed)
    assert final.status == Status.DONE
    shown = page.locator(f"#msg-{final.pk} button.copy").get_attribute("data-copy")
    assert shown == final.text
    if os.environ.get("ATELIER_SCREENSHOTS"):
        page.screenshot(path=os.environ["ATELIER_SCREENSHOTS"] + "/chat.png", full_page=True)

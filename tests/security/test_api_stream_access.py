"""Finding 6: a running API stream re-checks access at most a second apart, as sockets do.

The attack: bob opens a long ``stream: true`` completion, then is made a viewer (or removed).
Before the fix his stream went on to the end; now it ends within about a second with an error
event and ``[DONE]``, and his job stops. The worker side is the real runner (``run_text_job``)
in a thread, with a slow fake engine in place of the model.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient

from tests.factories import membership_of
from tests.helpers import make_key, wait_for
from webapp.api.models import TextJob
from webapp.workspaces import services as workspaces
from webapp.workspaces.models import Role

pytestmark = [pytest.mark.django_db(transaction=True)]

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def slow_worker(monkeypatch, redis_server):
    """Every text job runs at once in a thread of this process, through the real runner, on an
    engine that writes one token every 50 ms until stopped (30 s at most)."""
    import generation.text.engine as engine
    from generation.text.types import TextFinal, TokenDelta
    from webapp.api import tasks
    from webapp.core import jobs

    def generate(request, should_stop):
        started, count = time.monotonic(), 0
        while count < 600 and not should_stop():
            time.sleep(0.05)
            yield TokenDelta(text="la ", index=count, elapsed=time.monotonic() - started)
            count += 1
        yield TextFinal(text="la " * count, finish_reason="cancelled" if should_stop() else "length",
                        prompt_tokens=3, completion_tokens=count, time_to_first_token=0.05, tokens_per_second=20.0,
                        elapsed=time.monotonic() - started, model=request.model, params=request.params)

    def run(job_id):
        try:
            tasks.run_text_job.run(job_id)
        finally:
            connection.close()

    monkeypatch.setattr(engine, "generate_text", generate)
    monkeypatch.setattr(jobs, "task_send", lambda name, *, args, queue, task_id=None: threading.Thread(
        target=run, args=(args[0],), daemon=True).start())


async def _read_until_done(response, on_first_chunk, seconds: float) -> list:
    events, revoked_at = [], None
    deadline = time.monotonic() + seconds
    async for part in response.streaming_content:
        for line in part.decode().splitlines():
            if line.startswith("data: "):
                payload = line[6:]
                events.append((time.monotonic(), payload if payload == "[DONE]" else json.loads(payload)))
        if revoked_at is None and any(isinstance(e, dict) and e.get("choices") for _, e in events[1:]):
            await on_first_chunk()
            revoked_at = time.monotonic()
        if (events and events[-1][1] == "[DONE]") or time.monotonic() > deadline:
            break
    return [revoked_at, events]


@pytest.mark.parametrize("change", ["viewer", "removed"])
def test_a_stream_ends_within_about_a_second_once_access_is_taken_away(project, team, alice, bob, slow_worker,
                                                                       change):
    new = make_key(bob, project)

    def take_access_away():
        if change == "viewer":
            workspaces.membership_change_role(actor=membership_of(alice, team), membership=membership_of(bob, team),
                                              role=Role.VIEWER)
        else:
            workspaces.membership_remove(actor=membership_of(alice, team), membership=membership_of(bob, team))

    async def scenario():
        client = AsyncClient()
        response = await client.post(
            "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "Sing"}],
                                     "stream": True, "max_tokens": 1000},
            content_type="application/json", headers={"Authorization": f"Bearer {new.secret}"},
        )
        assert response.status_code == 200
        return await _read_until_done(response, sync_to_async(take_access_away), seconds=8)

    revoked_at, events = asyncio.run(scenario())
    assert revoked_at is not None, events
    assert events[-1][1] == "[DONE]", [e for _, e in events][-3:]
    at, error = events[-2]
    assert error["error"]["code"] == "access_revoked"
    assert at - revoked_at <= 1.6  # the re-check runs at most a second apart, before each event
    job = wait_for(lambda: TextJob.objects.filter(status="stopped").first(), 10, "the job to stop")
    assert job.completion_tokens < 600

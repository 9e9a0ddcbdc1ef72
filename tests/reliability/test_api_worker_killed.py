"""The text worker is killed (SIGKILL: no hook runs in it) while an API client reads an SSE stream.

The client gets a clean end: an error event in OpenAI's shape, then ``data: [DONE]``, and the job
ends failed with a reason, found by the lifecycle's stale sweep once the job's heartbeat is older
than ``ATELIER_JOB_STALE_SECONDS`` (the test runs the sweep every half second, as Celery beat runs it
every ``ATELIER_JOB_SWEEP_SECONDS``; no request sweeps: GET never writes). The web
side is this process (Django's async client, the real view and Redis logs); the worker is a real
text worker of its own, with the real default model.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest
from django.test import AsyncClient

from tests.helpers import make_key, text_queue_route, text_worker_own_queue, wait_for
from webapp.api.models import TextJob
from webapp.core import jobs

pytestmark = [pytest.mark.stack, pytest.mark.model, pytest.mark.django_db(transaction=True)]

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def doomed_worker(redis_server, django_db_setup, monkeypatch) -> Iterator:
    with text_worker_own_queue("doomed") as (queue, process):
        text_queue_route(monkeypatch, queue)
        yield process


def test_killing_the_text_worker_mid_stream_ends_the_stream_cleanly_and_fails_the_job(doomed_worker, project, bob,
                                                                                      settings):
    settings.JOB_STALE_SECONDS = 3
    new = make_key(bob, project)
    beat_stop = threading.Event()

    def beat() -> None:  # what Celery beat does on the maintenance queue, more often
        from django.db import connection

        try:
            while not beat_stop.wait(0.5):
                jobs.jobs_sweep_stale()
        finally:
            connection.close()

    sweeper = threading.Thread(target=beat, name="test-beat", daemon=True)

    async def scenario() -> list:
        client = AsyncClient()
        response = await client.post(
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": "Count from one to five hundred in words."}],
             "stream": True, "max_tokens": 1500, "temperature": 0},
            content_type="application/json", headers={"Authorization": f"Bearer {new.secret}"},
        )
        assert response.status_code == 200
        events, chunks, killed_at = [], 0, None
        async for part in response.streaming_content:
            for line in part.decode().splitlines():
                if line.startswith("data: "):
                    payload = line[6:]
                    events.append(payload if payload == "[DONE]" else json.loads(payload))
                    if isinstance(events[-1], dict) and events[-1].get("choices"):
                        chunks += 1
            if chunks >= 3 and killed_at is None:
                doomed_worker.kill()  # SIGKILL: the worker's own handlers never run
                doomed_worker.wait(timeout=30)
                killed_at = time.monotonic()
                sweeper.start()
            if events and events[-1] == "[DONE]":
                break
            assert killed_at is None or time.monotonic() - killed_at < 60, events[-3:]
        return events

    try:
        events = asyncio.run(scenario())
    finally:
        beat_stop.set()
        if sweeper.is_alive():
            sweeper.join(10)
    assert events[-1] == "[DONE]"
    error = events[-2]["error"]
    assert error["type"] == "server_error" and "error id" in error["message"]
    assert all("error" not in e for e in events[:-2] if isinstance(e, dict))
    job = wait_for(lambda: TextJob.objects.filter(status="failed").first(), 30, "the job to end failed")
    assert job.reason and job.finished_at is not None and job.finish_reason == "error"

"""API text jobs in the shared lifecycle: ends decided by the lifecycle reach the job's log."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers import make_key
from webapp.api import services, stream
from webapp.api.models import TextJob
from webapp.api.params import chat_spec
from webapp.api.selectors import key_authenticate
from webapp.core import jobs as lifecycle
from webapp.core.redis import get_redis

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def _logged(job):
    entries = get_redis().xrange(stream.log_key(job))
    return [json.loads(fields[b"e"]) for _, fields in entries]


@pytest.fixture
def call(project, bob, no_enqueue, django_capture_on_commit_callbacks):
    principal = key_authenticate(authorization=f"Bearer {make_key(bob, project).secret}")
    spec = chat_spec({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Hi"}], "n": 2,
                      "seed": 4})
    with django_capture_on_commit_callbacks(execute=True):
        created = services.text_call_create(actor=principal.membership, key=principal.key, spec=spec, kind="chat")
    return created


def test_a_call_enqueues_one_job_per_choice_on_the_text_queue(call, no_enqueue):
    assert [(sent.name, sent.queue, sent.args) for sent in no_enqueue] == [
        ("api.run_text_job", "text", [job.pk]) for job in call
    ]
    assert [job.params["seed"] for job in call] == [4, 5]


def test_stopping_a_queued_job_ends_it_and_tells_its_log(call, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.text_jobs_stop(jobs=call)
    assert {job.status for job in TextJob.objects.all()} == {"stopped"}
    assert _logged(call[0])[-1]["t"] == "end" and _logged(call[0])[-1]["status"] == "stopped"


def test_the_sweep_fails_a_silent_job_and_tells_its_log(call, django_capture_on_commit_callbacks):
    TextJob.objects.filter(pk=call[0].pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(hours=1), worker="gone@host"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.jobs_sweep_stale() >= 1
    assert TextJob.objects.get(pk=call[0].pk).status == "failed"
    end = _logged(call[0])[-1]
    assert end["t"] == "end" and end["status"] == "failed" and "heartbeat" in end["reason"]


def test_a_job_no_worker_took_expires_but_a_claimed_one_does_not(call):
    assert services.text_job_expire_unclaimed(job=call[0], waited=1)
    assert lifecycle.job_claim(kind="api.text", job_id=call[1].pk, worker="w")
    assert not services.text_job_expire_unclaimed(job=call[1], waited=1)
    assert TextJob.objects.get(pk=call[1].pk).status == "running"


def _engine(monkeypatch, *items):
    """The engine replaced by one that yields ``items`` (raising any exception among them)."""
    from generation.text import engine

    def fake(request, *, should_stop):
        for item in items:
            if isinstance(item, Exception):
                raise item
            yield item

    monkeypatch.setattr(engine, "generate_text", fake)


def test_the_text_runner_logs_claimed_start_chunks_and_an_end_with_usage(call, monkeypatch):
    from generation.text.types import DecodingParams, TextFinal, TokenDelta

    final = TextFinal(text="Hello there", finish_reason="stop", prompt_tokens=3, completion_tokens=2,
                      time_to_first_token=0.1, tokens_per_second=20.0, elapsed=0.2, model="m",
                      params=DecodingParams())
    _engine(monkeypatch, TokenDelta("Hello", 0, 0.1), TokenDelta(" there", 1, 0.2), final)
    done = services.text_job_run(job_id=call[0].pk, worker="w@h")
    events = _logged(call[0])
    assert [e["t"] for e in events][:2] == ["claimed", "start"] and events[-1]["t"] == "end"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert "".join(e.get("text", "") for e in events if e["t"] == "chunk") == "Hello there" == done.text
    assert events[-1]["status"] == "done" and (events[-1]["prompt_tokens"], events[-1]["completion_tokens"]) == (3, 2)
    assert (done.status, done.worker, done.completion_tokens) == ("done", "w@h", 2)
    assert services.text_job_run(job_id=call[0].pk) is None  # a redelivered task does nothing


def test_a_failing_engine_shows_a_generic_reason_with_an_error_id(call, monkeypatch, caplog):
    from generation.text.types import TokenDelta

    _engine(monkeypatch, TokenDelta("Half", 0, 0.1), RuntimeError("secret path /srv/x"))
    failed = services.text_job_run(job_id=call[0].pk)
    assert failed.status == "failed" and failed.text == "Half"
    assert "error id" in failed.reason and "secret" not in failed.reason and "RuntimeError" not in failed.reason
    assert _logged(call[0])[-1]["reason"] == failed.reason
    assert any("secret path" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


def test_an_expired_text_job_ends_through_the_lifecycle_and_tells_its_log(call, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert services.text_job_expire_unclaimed(job=call[0], waited=2)
    expired = TextJob.objects.get(pk=call[0].pk)
    assert (expired.status, expired.finish_reason) == ("failed", "error") and expired.finished_at is not None
    end = _logged(call[0])[-1]
    assert end["t"] == "end" and end["status"] == "failed" and "within 2 s" in end["reason"]


def test_an_expired_image_job_tells_the_studio_card(project, bob, monkeypatch, django_capture_on_commit_callbacks):
    from webapp.core import events
    from webapp.studio.models import Job

    sent = []
    monkeypatch.setattr(events, "get_publisher", lambda: type("P", (), {"publish": lambda s, g, m: sent.append(m)})())
    queued = Job.objects.create(project=project, author=bob, params={"prompt": "a cat"}, model_name="m")
    taken = Job.objects.create(project=project, author=bob, params={"prompt": "a dog"}, model_name="m",
                               status="running")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.image_job_expire_unclaimed(job_id=queued.pk, waited=1)
        assert not services.image_job_expire_unclaimed(job_id=taken.pk, waited=1)
    assert Job.objects.get(pk=queued.pk).status == "failed" and Job.objects.get(pk=taken.pk).status == "running"
    # The studio card hears of the expired job once (the project's activity feed hears of it too).
    assert [m for m in sent if m["type"].startswith("studio.")] == [
        {"type": "studio.job", "job_id": queued.pk, "status": "failed"}]
    assert {m["type"] for m in sent} <= {"studio.job", "activity.record"}

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

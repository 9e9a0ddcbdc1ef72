"""/metrics: Prometheus text for the holder of ATELIER_METRICS_TOKEN, refused to everyone else."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from webapp.chat.models import Conversation, Message
from webapp.core import workers
from webapp.studio.models import Job

pytestmark = pytest.mark.django_db

TOKEN = "scrape-me"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def _scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get(reverse("core:metrics"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _reply(conversation, **fields) -> Message:
    return Message.objects.create(conversation=conversation, role="assistant", status="done",
                                  finished_at=timezone.now(), **fields)


def test_metrics_are_off_without_a_token_setting(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("core:metrics")).status_code == 404


def test_metrics_refuse_an_outsider_without_the_token(client, token, mallory):
    client.force_login(mallory)
    response = client.get(reverse("core:metrics"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"atelier_" not in response.content


def test_metrics_refuse_a_wrong_token(client, token):
    response = client.get(reverse("core:metrics"), headers={"Authorization": "Bearer not-it"})
    assert response.status_code == 401


def test_metrics_count_jobs_by_kind_and_status(client, token, project, alice, redis_server):
    conversation = Conversation.objects.create(project=project, created_by=alice)
    _reply(conversation, completion_tokens=10, elapsed=2.0, time_to_first_token=0.3)
    _reply(conversation, completion_tokens=30, elapsed=2.0, time_to_first_token=4.0)
    Message.objects.create(conversation=conversation, role="user", text="hi")  # not a job
    Job.objects.create(project=project, author=alice, model_name="m", status="queued")
    Job.objects.create(project=project, author=alice, model_name="m", status="failed", reason="boom")

    samples = _scrape(client)

    assert samples[("atelier_jobs", (("kind", "chat_reply"), ("status", "done")))] == 2
    assert samples[("atelier_jobs", (("kind", "image"), ("status", "queued")))] == 1
    assert samples[("atelier_jobs", (("kind", "image"), ("status", "failed")))] == 1
    assert samples[("atelier_tokens_total", ())] == 40
    assert samples[("atelier_tokens_per_second", ())] == pytest.approx(10.0)


def test_time_to_first_token_is_a_histogram(client, token, project, alice, redis_server):
    conversation = Conversation.objects.create(project=project, created_by=alice)
    for ttft in (0.05, 0.3, 0.3, 4.0):
        _reply(conversation, completion_tokens=1, elapsed=1.0, time_to_first_token=ttft)

    samples = _scrape(client)

    bucket = "atelier_time_to_first_token_seconds_bucket"
    assert samples[(bucket, (("le", "0.1"),))] == 1
    assert samples[(bucket, (("le", "0.5"),))] == 3
    assert samples[(bucket, (("le", "5.0"),))] == 4
    assert samples[(bucket, (("le", "+Inf"),))] == 4
    assert samples[("atelier_time_to_first_token_seconds_count", ())] == 4
    assert samples[("atelier_time_to_first_token_seconds_sum", ())] == pytest.approx(4.65)


def test_metrics_report_image_steps_and_their_speed(client, token, project, alice, redis_server):
    Job.objects.create(project=project, author=alice, model_name="m", status="done", steps_done=20,
                       steps_total=20, seconds_per_step=0.5, finished_at=timezone.now())
    samples = _scrape(client)
    assert samples[("atelier_image_steps_total", ())] == 20
    assert samples[("atelier_image_steps_per_second", ())] == pytest.approx(2.0)


def test_metrics_report_alive_workers_and_queue_depth(client, token, settings, redis_server):
    from kombu import Connection, Exchange, Queue

    settings.ATELIER_QUEUES = ("probe-metrics",)
    queue = Queue("probe-metrics", Exchange("probe-metrics"), routing_key="probe-metrics")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.Producer().publish({}, exchange=queue.exchange, routing_key="probe-metrics", declare=[queue])
    workers.worker_heartbeat(name="probe@gpu-9", queues=["probe-metrics"])
    try:
        samples = _scrape(client)
    finally:
        workers.worker_forget(name="probe@gpu-9")
        with Connection(settings.CELERY_BROKER_URL) as conn:
            queue(conn.default_channel).purge()
    assert samples[("atelier_queue_depth", (("queue", "probe-metrics"),))] == 1
    assert samples[("atelier_workers", (("queue", "probe-metrics"),))] == 1


def test_metrics_count_every_registered_kind_of_job(client, token, project, alice, redis_server):
    from webapp.api.models import TextJob
    from webapp.reviews.models import ApprovedExport

    TextJob.objects.create(project=project, user=alice, call_id="c", kind="chat", model_name="m",
                           completion_tokens=7)
    ApprovedExport.objects.create(project=project, requested_by=alice)

    samples = _scrape(client)

    assert samples[("atelier_jobs", (("kind", "api_text"), ("status", "queued")))] == 1
    assert samples[("atelier_jobs", (("kind", "reviews_export"), ("status", "queued")))] == 1
    assert samples[("atelier_tokens_total", ())] == 7  # the API's tokens count too

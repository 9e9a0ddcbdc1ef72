"""/healthz and ``manage.py queues``: the database, Redis, storage and the workers by queue."""
from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from webapp.core import workers
from webapp.core.redis import get_redis

pytestmark = pytest.mark.django_db

TOKEN = "scrape-me"


@pytest.fixture
def heartbeats(redis_server, monkeypatch):
    """Worker records under a prefix of this test's own: a real worker of the suite, beating
    every few seconds under the real prefix, stays out of what these tests count."""
    prefix = f"atelier:test-worker:{uuid.uuid4().hex}:"
    monkeypatch.setattr(workers, "KEY_PREFIX", prefix)
    yield
    redis = get_redis()
    for key in redis.scan_iter(match=f"{prefix}*"):
        redis.delete(key)


def _healthz(client, settings):
    settings.METRICS_TOKEN = TOKEN
    return client.get(reverse("core:healthz"), headers={"Authorization": f"Bearer {TOKEN}"})


def test_healthz_reports_database_redis_and_storage(client, settings, heartbeats):
    response = _healthz(client, settings)
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"] == body["redis"] == body["storage"] == {"ok": True}
    assert set(body["workers"]) >= {"default", "text", "image"}


def test_healthz_is_503_and_names_redis_when_redis_is_down(client, settings, heartbeats):
    from webapp.core.embedded_redis import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = _healthz(client, settings)
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["redis"]["ok"] is False
    assert response.json()["database"]["ok"] is True


@pytest.mark.skipif(os.environ.get("ATELIER_STORAGE") != "s3", reason="make test-scale: S3 storage")
def test_healthz_is_503_and_names_storage_when_the_bucket_is_missing(client, settings, heartbeats):
    storages = {**settings.STORAGES}
    storages["default"] = {**storages["default"], "OPTIONS": {**storages["default"]["OPTIONS"], "bucket_name": "missing"}}
    settings.STORAGES = storages
    response = _healthz(client, settings)
    assert response.status_code == 503
    assert response.json()["storage"]["ok"] is False
    assert "NoSuchBucket" in response.json()["storage"]["error"]


def test_healthz_counts_alive_workers_by_queue(client, settings, heartbeats):
    workers.worker_heartbeat(name="text@gpu-1", queues=["text"])
    workers.worker_heartbeat(name="image@gpu-2", queues=["image", "default"])
    body = _healthz(client, settings).json()["workers"]
    assert [body[queue]["alive"] for queue in ("text", "image", "default")] == [1, 1, 1]


def test_healthz_hides_worker_names_from_an_outsider(client, mallory, settings, heartbeats):
    settings.METRICS_TOKEN = TOKEN
    workers.worker_heartbeat(name="text@gpu-1", queues=["text"])
    client.force_login(mallory)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        body = client.get(reverse("core:healthz"), headers=headers).json()
        assert "text@gpu-1" not in json.dumps(body)


def test_healthz_shows_each_workers_last_heartbeat_to_the_token_holder(client, settings, heartbeats):
    settings.METRICS_TOKEN = TOKEN
    workers.worker_heartbeat(name="text@gpu-1", queues=["text"])
    body = client.get(reverse("core:healthz"), headers={"Authorization": f"Bearer {TOKEN}"}).json()
    (seen,) = body["workers"]["text"]["workers"]
    assert seen["name"] == "text@gpu-1"
    assert seen["alive"] is True
    assert seen["queues"] == ["text"]
    assert seen["last_heartbeat"]


def test_a_worker_silent_for_two_intervals_is_not_alive(settings, heartbeats):
    settings.WORKER_HEARTBEAT_SECONDS = 5
    workers.worker_heartbeat(name="text@gpu-1", queues=["text"])
    (later,) = workers.workers_seen(now=time.time() + 12)
    assert later.alive is False
    (now,) = workers.workers_seen()
    assert now.alive is True


def test_queues_command_prints_depths_and_workers(settings, heartbeats):
    from kombu import Connection, Exchange, Queue

    settings.ATELIER_QUEUES = ("probe-queue",)
    queue = Queue("probe-queue", Exchange("probe-queue"), routing_key="probe-queue")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        producer = conn.Producer()
        for n in range(3):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="probe-queue", declare=[queue])
    workers.worker_heartbeat(name="image@gpu-2", queues=["probe-queue"])
    out = StringIO()
    try:
        call_command("queues", stdout=out)
    finally:
        with Connection(settings.CELERY_BROKER_URL) as conn:
            queue(conn.default_channel).purge()
    lines = out.getvalue().splitlines()
    assert any(line.split() == ["probe-queue", "3", "1"] for line in lines), lines
    assert any(line.startswith("image@gpu-2") and "alive" in line and "queues=probe-queue" in line for line in lines)


def test_queues_command_says_when_no_worker_was_seen(heartbeats):
    out = StringIO()
    call_command("queues", stdout=out)
    assert "No worker has sent a heartbeat." in out.getvalue()


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_the_running_stack_reports_its_worker_and_storage(celery_worker, asgi_server, settings):
    """The real worker's heartbeat reaches the real server's /healthz (storage: local disk or S3)."""
    deadline = time.monotonic() + 30
    while True:
        request = urllib.request.Request(f"{asgi_server}/healthz",  # noqa: S310
                                         headers={"Authorization": f"Bearer {os.environ['ATELIER_METRICS_TOKEN']}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = json.loads(response.read())
        if all(body["workers"][q]["alive"] >= 1 for q in ("default", "text", "image")):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
    assert body["status"] == "ok"
    assert body["storage"] == {"ok": True}

from __future__ import annotations

import pytest
import redis

from webapp.core.tasks import ping


@pytest.mark.stack
def test_embedded_redis_answers(redis_server):
    client = redis.Redis.from_url(redis_server)
    assert client.ping() is True
    info = client.info("server")
    assert info["tcp_port"] == client.connection_pool.connection_kwargs["port"]


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_task_round_trips_through_a_real_worker(celery_worker):
    result = ping.apply_async(args=["hello"], queue="default")
    assert result.get(timeout=30) ["echo"] == "hello"
    assert celery_worker.poll() is None  # the worker is a separate, live process

"""The broker (the embedded Redis) restarted in the middle of a streamed reply.

Nothing already stored is lost (the streamed text survives in the log and in the row),
the live reply ends cleanly (done, or failed with a reason: never stuck running), and the
next reply works. The suite's Redis is shared with other tests, so this one starts a Redis
of its own (``embedded_redis.start``, with a password and persistence as ``make run`` has
them) and a worker of its own pointed at it.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.factories import membership_of
from tests.helpers import SentTasks, short_settings, wait_for, worker_running
from webapp.core import embedded_redis
from webapp.core.jobs import END_STATUSES, JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.model, pytest.mark.django_db(transaction=True)]
WAIT = 300  # the worker loads the default models first


@dataclass
class Broker:
    port: int
    password: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = embedded_redis.start(port=self.port, data_dir=self.data_dir, persist=True,
                                            password=self.password)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    port, password, data_dir = embedded_redis.free_port(), secrets.token_hex(16), tmp_path / "redis"
    own = Broker(port, password, data_dir,
                 embedded_redis.start(port=port, data_dir=data_dir, persist=True, password=password))
    try:
        yield own
    finally:
        if own.process.poll() is None:
            own.stop()


@pytest.fixture
def worker(broker: Broker) -> Iterator[subprocess.Popen]:
    env = {"REDIS_URL": broker.url, "CELERY_BROKER_URL": None, "CELERY_RESULT_BACKEND": None}
    with worker_running("all", "-n", f"broker-restart-{os.getpid()}@test", log="broker-restart-worker.log",
                        env=env) as process:
        yield process


def _send(sent: SentTasks, broker: Broker) -> None:
    """Hand the tasks the services sent to the own broker (the suite's worker never sees them)."""
    from celery import Celery

    sender = Celery("sender", broker=broker.url)
    try:
        for task in sent:
            sender.send_task(task.name, args=task.args, kwargs=task.kwargs, queue=task.queue, task_id=task.task_id)
    finally:
        sender.close()
    sent.clear()


def _logged_text(client: redis.Redis, message: Any) -> str:
    from webapp.chat import stream

    entries = client.xrange(stream.log_key(message), min="-", max="+")
    return "".join(json.loads(fields[b"e"]).get("text", "") for _, fields in entries)


def _fresh(row: Any) -> Any:
    return type(row).objects.get(pk=row.pk)


def test_a_broker_restart_mid_stream_loses_nothing_stored_and_the_next_reply_works(project, bob, broker, worker,
                                                                                   no_enqueue):
    from webapp.chat import services

    membership = membership_of(bob)
    conversation = services.conversation_create(project=project, actor=membership,
                                                reply_settings=short_settings())
    reply = services.message_send(conversation=conversation, actor=membership, text="Tell me a long story.",
                                  parent=None, reply_settings=short_settings(max_new_tokens=300))
    _send(no_enqueue, broker)
    client = redis.Redis.from_url(broker.url)
    try:
        wait_for(lambda: _fresh(reply).status == JobStatus.RUNNING and len(_logged_text(client, reply)) >= 10,
                 WAIT, "the reply to stream")
        before = _logged_text(client, reply)
        broker.stop()
        assert _fresh(reply).status == JobStatus.RUNNING  # the restart lands mid-stream
        broker.start()

        ended = wait_for(lambda: (row := _fresh(reply)).status in END_STATUSES and row, 120, "the reply to end")
        assert ended.status in (JobStatus.DONE, JobStatus.FAILED), ended.status
        if ended.status == JobStatus.FAILED:
            assert ended.reason
        assert ended.text.startswith(before), "text streamed before the restart was lost from the row"
        assert _logged_text(client, reply).startswith(before), "the log lost what it held before the restart"

        follow_up = services.message_send(conversation=conversation, actor=membership, text="Say hi.",
                                          parent=ended, reply_settings=short_settings())
        _send(no_enqueue, broker)
        done = wait_for(lambda: (row := _fresh(follow_up)).status in END_STATUSES and row, WAIT, "the next reply")
        assert done.status == JobStatus.DONE and done.text
    finally:
        client.close()


def test_a_broker_restart_mid_image_job_ends_it_cleanly_and_the_next_job_works(project, bob, broker, worker,
                                                                               no_enqueue):
    from tests.helpers import tiny_request
    from webapp.studio import services

    membership = membership_of(bob)
    job = services.job_create(project=project, actor=membership,
                              request=tiny_request(steps=150, width=64, height=64))
    _send(no_enqueue, broker)
    wait_for(lambda: _fresh(job).status == JobStatus.RUNNING and _fresh(job).steps_done >= 2, WAIT, "the job to run")
    broker.stop()
    assert _fresh(job).status == JobStatus.RUNNING  # the restart lands mid-job
    broker.start()

    ended = wait_for(lambda: (row := _fresh(job)).status in END_STATUSES and row, 180, "the job to end")
    assert ended.status in (JobStatus.DONE, JobStatus.FAILED), ended.status
    if ended.status == JobStatus.DONE:
        assert ended.assets.count() == 1
    else:
        assert ended.reason and not ended.assets.exists()

    following = services.job_create(project=project, actor=membership, request=tiny_request(steps=2))
    _send(no_enqueue, broker)
    done = wait_for(lambda: (row := _fresh(following)).status in END_STATUSES and row, WAIT, "the next job")
    assert done.status == JobStatus.DONE and done.assets.count() == 1

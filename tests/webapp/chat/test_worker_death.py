"""A worker killed in the middle of a reply: the reply ends "failed" with its partial
text, never "streaming" forever. A real worker process is killed with SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import ROOT
from tests.factories import membership_of
from tests.webapp.chat.conftest import short_settings
from webapp.chat import services, stream
from webapp.chat.models import Message
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

NAME = f"dying-{os.getpid()}@test"


def _start_worker(log_name: str) -> subprocess.Popen:
    env = {**os.environ, "ATELIER_DATABASE_NAME": str(connection.settings_dict["NAME"]), "PYTHONUNBUFFERED": "1",
           "ATELIER_PRELOAD_TEXT_MODEL": "0"}
    log = open(settings.VAR_DIR / log_name, "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "dying", "-c", "1", "-n", NAME,
         "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_reply_whose_worker_is_killed_ends_failed_with_its_partial_text(redis_server, conversation, bob, monkeypatch):
    from webapp.celery import app
    from webapp.core import jobs

    monkeypatch.setattr(jobs, "task_send", lambda *a, **k: None)  # not to the "text" queue
    reply = services.message_send(conversation=conversation, membership=membership_of(bob), text="Tell me a long story.", parent=None,
                                  reply_settings=short_settings(max_new_tokens=1000))
    worker = _start_worker("dying-worker-1.log")
    try:
        app.send_task("chat.generate_reply", args=[reply.pk], queue="dying")
        _wait(lambda: len(stream.log_read(message=reply)) >= 3, 300, "the reply to stream")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool process, mid-reply
        worker.wait(timeout=10)
    reply.refresh_from_db()
    assert reply.status == JobStatus.RUNNING  # nobody will ever finish it

    # The same worker coming back fails what its previous self left streaming.
    again = _start_worker("dying-worker-2.log")
    try:
        _wait(lambda: Message.objects.get(pk=reply.pk).status != JobStatus.RUNNING, 300, "the start-up sweep")
    finally:
        again.terminate()
        again.wait(timeout=30)
    reply.refresh_from_db()
    assert reply.status == JobStatus.FAILED and "worker restarted" in reply.reason
    assert reply.text and reply.text == stream.log_text(message=reply)


def test_a_reply_whose_pool_process_is_killed_ends_failed_at_once(redis_server, conversation, bob, monkeypatch):
    from webapp.celery import app
    from webapp.core import jobs

    monkeypatch.setattr(jobs, "task_send", lambda *a, **k: None)
    reply = services.message_send(conversation=conversation, membership=membership_of(bob), text="Tell me a long story.", parent=None,
                                  reply_settings=short_settings(max_new_tokens=1000))
    worker = _start_worker("dying-worker-3.log")
    try:
        app.send_task("chat.generate_reply", args=[reply.pk], queue="dying")
        _wait(lambda: len(stream.log_read(message=reply)) >= 3, 300, "the reply to stream")
        pool = [int(pid) for pid in subprocess.check_output(["pgrep", "-P", str(worker.pid)]).split()]
        for pid in pool:
            os.kill(pid, signal.SIGKILL)  # only the pool process; the worker itself lives on
        _wait(lambda: Message.objects.get(pk=reply.pk).status != JobStatus.RUNNING, 30, "the loss to be reported")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    reply.refresh_from_db()
    assert reply.status == JobStatus.FAILED and "worker process was lost" in reply.reason
    assert reply.text and reply.text == stream.log_text(message=reply)

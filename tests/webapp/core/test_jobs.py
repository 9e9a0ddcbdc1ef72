"""The one job lifecycle (webapp.core.jobs), for every kind of job: chat replies and image jobs.

Each behaviour runs for both kinds. The first group runs the lifecycle in this
process (threads, Redis, the database); the second hands real jobs to a real
Celery worker with the default models: claim, duplicate delivery, heartbeat,
stop, the beat sweep, a killed pool process and a restarted worker.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.factories import membership_of
from tests.helpers import ROOT, short_settings, tiny_request, wait_for, worker_command
from webapp.core import jobs
from webapp.core.jobs import JobStatus

pytestmark = pytest.mark.usefixtures("redis_server")
WAIT = 300  # a (replacement) pool process may still be loading the default models


def _wait(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    return wait_for(check, timeout, what)


@dataclass
class Case:
    """What the tests need to know about one kind of job: how to make, watch and stop one."""

    name: str
    kind: str
    make: Callable[..., Any]
    progressed: Callable[[Any], bool]
    stop: Callable[[Any, Any], None]
    results: Callable[[Any], int]


def _chat_make(*, project: Any, user: Any, long: bool) -> Any:
    from webapp.chat import services

    membership = membership_of(user)
    conversation = services.conversation_create(project=project, actor=membership, reply_settings=short_settings())
    return services.message_send(
        conversation=conversation, actor=membership, text="Count from one to one thousand in words." if long else "Say hi.",
        parent=None, reply_settings=short_settings(**(_NEVER_ENDS if long else {})),
    )


# A long reply must not end by itself before the test stops it: greedy decoding of a small model
# may reach its end-of-sequence token within the first second. Sampling at the highest temperature
# with no filters makes the end token one of 49,152 almost equally likely picks at every step.
_NEVER_ENDS = {"max_new_tokens": 1000, "strategy": "sample", "temperature": 2.0, "top_k": 0, "top_p": 1.0, "seed": 7}


def _chat_progressed(row: Any) -> bool:
    from webapp.chat import stream

    return len(stream.log_read(message=row)) >= 3


def _chat_stop(row: Any, user: Any) -> None:
    from webapp.chat import services

    services.reply_stop(message=row, actor=membership_of(user))


def _chat_results(row: Any) -> int:
    from webapp.chat import stream

    return sum(event["type"] == "end" for event in stream.log_read(message=row))


def _image_make(*, project: Any, user: Any, long: bool) -> Any:
    from webapp.studio import services

    request = tiny_request(steps=150, width=64, height=64) if long else tiny_request(steps=2)
    return services.job_create(project=project, actor=membership_of(user), request=request)


def _image_progressed(row: Any) -> bool:
    return type(row).objects.get(pk=row.pk).steps_done >= 2  # written by the heartbeat


def _image_stop(row: Any, user: Any) -> None:
    from webapp.studio import services

    services.job_cancel(job=row, actor=membership_of(user))


def _image_results(row: Any) -> int:
    return row.assets.count()


CASES = [
    Case("chat", "chat.reply", _chat_make, _chat_progressed, _chat_stop, _chat_results),
    Case("studio", "studio.image", _image_make, _image_progressed, _image_stop, _image_results),
]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: Any) -> Case:
    return request.param


def _row(case: Case, row: Any) -> Any:
    return jobs.job_kind_get(case.kind).model._default_manager.get(pk=row.pk)


# --- The lifecycle in this process ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_both_kinds_are_registered_with_their_task_and_queue():
    kinds = {kind.name: (kind.task_name, kind.queue) for kind in jobs.job_kinds()}
    assert kinds["chat.reply"] == ("chat.generate_reply", "text")
    assert kinds["studio.image"] == ("studio.run_image_job", "image")


@pytest.mark.django_db(transaction=True)
def test_a_job_is_enqueued_by_task_name_after_commit(case, project, bob, no_enqueue):
    row = case.make(project=project, user=bob, long=False)
    kind = jobs.job_kind_get(case.kind)
    assert [(task.name, task.args, task.queue) for task in no_enqueue] == [(kind.task_name, [row.pk], kind.queue)]
    assert row.status == JobStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_claim_is_idempotent(case, project, bob, no_enqueue):
    row = case.make(project=project, user=bob, long=False)
    assert jobs.job_claim(kind=case.kind, job_id=row.pk, worker="w1@h")
    assert not jobs.job_claim(kind=case.kind, job_id=row.pk, worker="w2@h")  # a duplicate delivery
    claimed = _row(case, row)
    assert (claimed.status, claimed.worker) == (JobStatus.RUNNING, "w1@h")
    assert claimed.started_at is not None and claimed.heartbeat_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_job_stopped_in_the_queue_is_never_claimed(case, project, bob, no_enqueue):
    row = case.make(project=project, user=bob, long=False)
    assert jobs.job_stop(kind=case.kind, job=row, reason="Changed my mind.") == JobStatus.STOPPED
    assert not jobs.job_claim(kind=case.kind, job_id=row.pk, worker="w1@h")
    stopped = _row(case, row)
    assert (stopped.status, stopped.reason) == (JobStatus.STOPPED, "Changed my mind.")


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_writes_progress_and_notices_a_lost_job(case, project, bob, no_enqueue, redis_server):
    row = case.make(project=project, user=bob, long=False)
    jobs.job_claim(kind=case.kind, job_id=row.pk, worker="w1@h")
    row = _row(case, row)
    beats: list[float] = []
    with jobs.JobRun(kind=case.kind, job=row, interval=0.05, progress=lambda: beats.append(1) or {}) as run:
        _wait(lambda: len(beats) >= 2, "two heartbeats", timeout=10)
        assert _row(case, row).heartbeat_at > row.heartbeat_at
        assert not run.should_stop()
        jobs.job_fail(kind=case.kind, job_id=row.pk, reason="swept")  # the sweep, say
        _wait(run.should_stop, "the heartbeat to notice", timeout=10)
        assert run.lost and not run.stopped


@pytest.mark.django_db(transaction=True)
def test_the_stop_watch_sees_a_stop_at_once_and_one_sent_before_the_start(case, project, bob, no_enqueue, redis_server):
    first = case.make(project=project, user=bob, long=False)
    second = case.make(project=project, user=bob, long=False)
    for row in (first, second):
        jobs.job_claim(kind=case.kind, job_id=row.pk, worker="w1@h")
    first, second = _row(case, first), _row(case, second)
    jobs.job_stop(kind=case.kind, job=first, reason="Before the start.")
    assert jobs.JobRun(kind=case.kind, job=first).should_stop()  # read once, when the run starts
    with jobs.JobRun(kind=case.kind, job=second, interval=3600) as run:
        assert not run.should_stop()
        asked = time.monotonic()
        jobs.job_stop(kind=case.kind, job=second, reason="Now.")
        _wait(run.should_stop, "the stop", timeout=5)
        assert time.monotonic() - asked < 0.5  # woken by Redis, not by a poll
        assert run.stopped and run.stop_reason == "Now."


@pytest.mark.django_db(transaction=True)
def test_finish_only_ends_a_running_job(case, project, bob, no_enqueue):
    row = case.make(project=project, user=bob, long=False)
    assert not jobs.job_finish(kind=case.kind, job_id=row.pk, status=JobStatus.DONE)  # still queued
    jobs.job_claim(kind=case.kind, job_id=row.pk, worker="w1@h")
    jobs.job_fail(kind=case.kind, job_id=row.pk, reason="swept")
    assert not jobs.job_finish(kind=case.kind, job_id=row.pk, status=JobStatus.DONE)  # a swept job stays failed
    assert _row(case, row).status == JobStatus.FAILED
    with pytest.raises(ValueError):
        jobs.job_finish(kind=case.kind, job_id=row.pk, status=JobStatus.RUNNING)


@pytest.mark.django_db(transaction=True)
def test_main_process_publishing_never_starts_the_publisher_thread(case, project, bob, no_enqueue, redis_server,
                                                                   monkeypatch):
    """The bug fixed here: chat's lost-task and worker_ready hooks started the publisher thread
    in Celery's main process, which forks the pool."""
    import threading

    from webapp.core import events

    row = case.make(project=project, user=bob, long=False)
    kind = jobs.job_kind_get(case.kind)
    # A ticket kind (studio) finds the job by the id of the task that picked it, as Celery reports it.
    ticket = {"task_id": "lost-task"} if kind.fair_by else None
    jobs.job_claim(kind=case.kind, job_id=row.pk, worker="gone@h", values=ticket)
    monkeypatch.setattr(events, "_publisher", None)
    monkeypatch.setattr(events, "_without_thread", False)
    jobs.publish_without_thread_in_main_process()  # what worker_init does in the main process
    before = {t.name for t in threading.enumerate()}
    jobs.fail_job_of_a_lost_task(sender=type("T", (), {"name": kind.task_name})(),
                                 args=[row.pk], exception="signal 9", task_id="lost-task")
    assert _row(case, row).status == JobStatus.FAILED
    assert "channel-publisher" not in {t.name for t in threading.enumerate()} - before
    assert events._publisher is None


# --- With a real worker ----------------------------------------------------------------------

@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_claims_beats_and_stops_a_job_within_a_step(case, project, bob, celery_worker):
    row = case.make(project=project, user=bob, long=True)
    running = _wait(lambda: _row(case, row).status == JobStatus.RUNNING and _row(case, row), "the claim")
    assert running.worker.startswith(f"test-{os.getpid()}@")
    _wait(lambda: case.progressed(row), "the job to make progress")
    _wait(lambda: _row(case, row).heartbeat_at > running.started_at + timedelta(seconds=0.5), "a heartbeat")
    asked = time.monotonic()
    case.stop(row, bob)
    ended = _wait(lambda: _row(case, row).status != JobStatus.RUNNING and _row(case, row), "the stop", timeout=60)
    assert ended.status == JobStatus.STOPPED
    assert time.monotonic() - asked < 10  # a token or a step, not the rest of the job
    if case.name == "chat":
        assert 0 < ended.completion_tokens < 1000 and ended.finish_reason == "cancelled"
    else:
        assert ended.steps_done < 150 and not ended.assets.exists()


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_task_delivered_twice_runs_once(case, project, bob, celery_worker):
    from webapp.celery import app

    row = case.make(project=project, user=bob, long=False)  # enqueued once by the service
    kind = jobs.job_kind_get(case.kind)
    duplicate = app.send_task(kind.task_name, args=[row.pk], queue=kind.queue, ignore_result=False)
    duplicate.get(timeout=WAIT)  # one queue, one process: the first delivery ran before it
    done = _row(case, row)
    assert done.status == JobStatus.DONE
    assert case.results(done) == 1
    if case.name == "chat":
        assert duplicate.result == "skipped"


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_the_beat_sweep_fails_a_job_whose_heartbeat_stopped(case, project, bob, celery_worker, monkeypatch):
    from webapp.celery import app

    with monkeypatch.context() as patch:
        patch.setattr(jobs, "task_send", lambda *args, **kwargs: None)
        row = case.make(project=project, user=bob, long=False)
    jobs.job_claim(kind=case.kind, job_id=row.pk, worker="gone@nowhere")
    model = jobs.job_kind_get(case.kind).model
    model._default_manager.filter(pk=row.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    app.send_task("core.sweep_stale_jobs", queue="default").get(timeout=60)  # what beat sends
    swept = _row(case, row)
    assert swept.status == JobStatus.FAILED and "stopped responding" in swept.reason


def _pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_killed_pool_process_fails_its_job_at_once(case, project, bob, celery_worker):
    row = case.make(project=project, user=bob, long=True)
    _wait(lambda: _row(case, row).status == JobStatus.RUNNING and case.progressed(row), "the job to run")
    for child in _pool_children(celery_worker.pid):
        os.kill(child, signal.SIGKILL)  # only the pool process; the worker replaces it
    failed = _wait(lambda: _row(case, row).status != JobStatus.RUNNING and _row(case, row), "the loss", timeout=60)
    assert failed.status == JobStatus.FAILED and "worker process was lost" in failed.reason
    if case.name == "chat":
        from webapp.chat import stream

        assert failed.text and failed.text == stream.log_text(message=failed)  # the partial text is kept
    else:
        assert not failed.assets.exists()


RESTART_NAME = f"restarting-{os.getpid()}@test"


def _start_worker(log_name: str) -> subprocess.Popen:
    env = {**os.environ, "ATELIER_DATABASE_NAME": str(connection.settings_dict["NAME"]), "PYTHONUNBUFFERED": "1",
           "ATELIER_PRELOAD_TEXT_MODEL": "0"}
    log = open(settings.VAR_DIR / log_name, "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        worker_command("all", "-Q", "restarting", "-n", RESTART_NAME),
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_a_restarted_worker_fails_what_its_previous_self_left_running(case, project, bob, redis_server, no_enqueue):
    row = case.make(project=project, user=bob, long=True)
    worker = _start_worker(f"restarting-{case.name}-1.log")
    try:
        no_enqueue.send(queue="restarting")  # to this worker, not to the shared queues
        _wait(lambda: _row(case, row).status == JobStatus.RUNNING and case.progressed(row), "the job to run")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool process: nobody reports anything
        worker.wait(timeout=10)
    assert _row(case, row).status == JobStatus.RUNNING
    again = _start_worker(f"restarting-{case.name}-2.log")
    try:
        failed = _wait(lambda: _row(case, row).status != JobStatus.RUNNING and _row(case, row), "the start-up sweep")
    finally:
        again.terminate()
        again.wait(timeout=30)
    assert failed.status == JobStatus.FAILED and "worker restarted" in failed.reason
    if case.name == "chat":
        from webapp.chat import stream

        assert failed.text and failed.text == stream.log_text(message=failed)  # the partial text is kept

"""The web side: a job leaves for its queue after commit; stopping a queued or running job."""
from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.core.errors import error_logged
from webapp.core.jobs.ends import job_fail
from webapp.core.jobs.kinds import (
    JobKind,
    JobStatus,
    _publish_after_commit,
    _stop_queue_key,
    job_kind_get,
    stop_flag_key,
)
from webapp.core.jobs.signals import job_finished_send
from webapp.core.redis import get_redis

logger = logging.getLogger(__name__)


def task_send(name: str, *, args: list[Any], queue: str, task_id: str | None = None) -> None:
    """The one place a job leaves for the broker, by task name (tests replace it)."""
    from webapp.celery import app

    app.send_task(name, args=args, queue=queue, task_id=task_id)


def _send(*, kind: JobKind, job_id: int, task_id: str | None) -> None:
    from webapp.core import jobs  # through the package, where tests replace ``task_send``

    try:
        jobs.task_send(kind.task_name, args=[job_id], queue=kind.queue, task_id=task_id)
    except Exception:  # the broker is down: say so rather than stay queued forever
        error_id = error_logged(logger, "could not enqueue %s %s", kind.name, job_id)
        job_fail(kind=kind, job_id=job_id, reason=f"Could not reach the job queue (error id {error_id}).")


def job_enqueue(*, kind: JobKind | str, job_id: int, task_id: str | None = None) -> None:
    """Send the kind's task for ``job_id`` to its queue once the current transaction commits.

    Outside a transaction it goes at once. If the broker cannot be reached the
    job ends failed with that reason, so nothing waits in "queued" forever.
    """
    transaction.on_commit(partial(_send, kind=job_kind_get(kind), job_id=job_id, task_id=task_id))




def _stop_ttl() -> int:
    return int(getattr(settings, "JOB_STOP_FLAG_TTL", 24 * 3600))


def job_stop_request(*, kind: JobKind | str, job: Any, reason: str = "") -> None:
    """Raise the stop flag of ``job`` and wake its stop watch (one Redis round trip)."""
    kind = job_kind_get(kind)
    value = (reason or "Stopped.").encode()
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(stop_flag_key(kind=kind, job=job), value, ex=_stop_ttl())
    pipe.rpush(_stop_queue_key(kind, job), value)
    pipe.expire(_stop_queue_key(kind, job), _stop_ttl())
    pipe.execute()


def job_stop(*, kind: JobKind | str, job: Any, reason: str = "") -> str:
    """Stop a live job: a queued one ends "stopped" at once, a running one within a step or token.

    The running job's worker sees the flag through its stop watch and ends
    the job "stopped" itself, keeping what it made so far. A finished job is
    left as it is. Returns the status the row has now. Permission checks are
    the caller's (the app's service, which takes the actor's membership).
    """
    kind = job_kind_get(kind)
    manager = kind.model._default_manager
    if job.status == JobStatus.RUNNING:  # as the caller read it: the flag first, the worker is waiting
        job_stop_request(kind=kind, job=job, reason=reason)
        return str(manager.filter(pk=job.pk).values_list("status", flat=True).first() or JobStatus.STOPPED)
    values = kind.end_values(job, JobStatus.STOPPED)
    with transaction.atomic():
        stopped = manager.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.STOPPED, reason=reason[:2000], finished_at=timezone.now(), **values
        )
        if stopped:  # no worker can claim it now: no flag needed
            job_finished_send(kind=kind, job_id=job.pk, status=JobStatus.STOPPED)
            _publish_after_commit(kind, job.pk)
            return JobStatus.STOPPED
    status = manager.filter(pk=job.pk).values_list("status", flat=True).first()
    if status == JobStatus.RUNNING:
        job_stop_request(kind=kind, job=job, reason=reason)
    return str(status or JobStatus.STOPPED)

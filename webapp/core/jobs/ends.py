"""The ends of a job: the claim (queued -> running), the finish, the failure, the expiry in the queue."""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from webapp.core.errors import error_logged, public_failure
from webapp.core.jobs.kinds import (
    END_STATUSES,
    LIVE_STATUSES,
    JobKind,
    JobStatus,
    _publish_after_commit,
    job_kind_get,
)
from webapp.core.jobs.signals import job_finished_send

logger = logging.getLogger(__name__)


def job_claim(*, kind: JobKind | str, job_id: int, worker: str, values: dict[str, Any] | None = None) -> bool:
    """queued -> running for ``worker``, by one conditional UPDATE; publishes after commit.

    False when the row is not queued any more (a duplicated or redelivered
    task, a job stopped or failed in the queue, a deleted row): the caller
    then does nothing.
    """
    kind = job_kind_get(kind)
    now = timezone.now()
    with transaction.atomic():
        claimed = kind.model._default_manager.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200], **(values or {})
        )
        if claimed:
            _publish_after_commit(kind, job_id)
    return bool(claimed)


def job_finish(
    *,
    kind: JobKind | str,
    job_id: int,
    status: str,
    reason: str = "",
    values: dict[str, Any] | None = None,
    publish: bool = True,
    measured: dict[str, Any] | None = None,
) -> bool:
    """running -> ``status`` (done, stopped or failed) with ``values``, in one conditional UPDATE.

    False when the row is no longer running (swept, failed by a hook, deleted):
    nothing is written then. Call it inside the transaction that stores the
    result, so the result and the end commit together. ``publish=False`` for
    a kind that announces its own end (chat's reply stream). ``measured`` goes
    with the ``job_finished`` signal (what the row does not hold: the compute
    seconds of a batched text job, for instance).
    """
    kind = job_kind_get(kind)
    if status not in END_STATUSES:
        raise ValueError(f"{status!r} is not an end status")
    now = timezone.now()
    with transaction.atomic():
        updated = kind.model._default_manager.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=status, reason=reason[:2000], finished_at=now, heartbeat_at=now, **(values or {})
        )
        if updated:
            job_finished_send(kind=kind, job_id=job_id, status=status, measured=measured)
        if updated and publish:
            _publish_after_commit(kind, job_id)
    return bool(updated)


def _end_unfinished(*, kind: JobKind, job_id: int, status: str, reason: str, among: tuple[str, ...]) -> bool:
    """``among`` -> ``status`` with ``reason`` and the kind's ``end_values``, one conditional UPDATE; publishes."""
    row = kind.model._default_manager.filter(pk=job_id, status__in=among).first()
    if row is None:
        return False
    values = kind.end_values(row, status)
    with transaction.atomic():
        updated = kind.model._default_manager.filter(pk=job_id, status__in=among).update(
            status=status, reason=reason[:2000], finished_at=timezone.now(), **values
        )
        if updated:
            job_finished_send(kind=kind, job_id=job_id, status=status)
            _publish_after_commit(kind, job_id)
    return bool(updated)


def job_fail(*, kind: JobKind | str, job_id: int, reason: str) -> bool:
    """queued or running -> failed with ``reason`` (and the kind's ``end_values``); publishes after commit.

    False if the job had already ended or is gone. Safe to call twice and
    from any process, Celery's main process included.
    """
    return _end_unfinished(kind=job_kind_get(kind), job_id=job_id, status=JobStatus.FAILED, reason=reason,
                           among=LIVE_STATUSES)


def job_expire(*, kind: JobKind | str, job_id: int, waited: float) -> bool:
    """Fail the job if it is still queued: no worker took it within ``waited`` seconds; publishes after commit.

    False when a worker has it by now (or it ended, or is gone): it is left
    as it is. For a caller that waits on a worker with a deadline (the API).
    """
    return _end_unfinished(kind=job_kind_get(kind), job_id=job_id, status=JobStatus.FAILED,
                           reason=f"No worker took the job within {waited:g} s.", among=(JobStatus.QUEUED,))


def job_fail_logged(*, kind: JobKind | str, job_id: int, what: str) -> bool:
    """Fail the job for the exception being handled: the log gets the detail under an error id, the
    user the generic failure naming ``what`` ("The reply") with that id. For a task's last ``except``."""
    kind = job_kind_get(kind)
    error_id = error_logged(logger, "%s %s failed", kind.name, job_id)
    return job_fail(kind=kind, job_id=job_id, reason=public_failure(what, error_id))

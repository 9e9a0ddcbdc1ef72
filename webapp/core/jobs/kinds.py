"""Kinds of jobs: the statuses, what a kind tells the lifecycle (``JobKind``), the registry,
publishing a row's state, and the Redis keys of a job."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import models, transaction

logger = logging.getLogger(__name__)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


LIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
END_STATUSES = (JobStatus.DONE, JobStatus.STOPPED, JobStatus.FAILED)


def _no_publish(job: Any) -> None:
    return None


def _no_values(job: Any, status: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class JobKind:
    """What one kind of job tells the lifecycle about itself.

    ``publish(row)`` tells the row's watchers that its state changed; it runs
    after commit, reads the row as stored, and publishes with
    ``webapp.core.events.get_publisher()`` (thread-free in Celery's main
    process). ``end_values(row, status)`` returns extra columns for an end
    that the lifecycle decides (a stop in the queue, a failure, the sweep):
    chat keeps the text streamed so far, for instance.
    """

    name: str
    model: type[models.Model]
    task_name: str
    queue: str
    publish: Callable[[Any], None] = _no_publish
    end_values: Callable[[Any, str], dict[str, Any]] = field(default=_no_values)
    # Set for a kind served in fair order: the column whose owner gets a fair
    # share (``"author_id"``). Its task is then a ticket: it runs whichever job
    # ``job_pick`` gives it, and the rows need a ``task_id`` column.
    fair_by: str = ""
    # The column naming the person a job counts against (``"author_id"``): quotas shared by
    # every kind of one queue count it (``job_quota_check_queue``). Empty: the kind counts nowhere.
    owner: str = ""
    # The rows of ``model`` that are jobs of this kind, as filter arguments (chat's: the replies,
    # not the users' messages). The metrics count these.
    scope: dict[str, Any] = field(default_factory=dict, hash=False)
    # The kind in /metrics; its name with "_" for "." unless set.
    label: str = ""

    @property
    def metric_label(self) -> str:
        return self.label or self.name.replace(".", "_")

    def rows(self) -> models.QuerySet[Any]:
        """Every row that is a job of this kind."""
        return self.model._default_manager.filter(**self.scope)


_KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> JobKind:
    """Register ``kind`` (idempotent per name); call it from the app's ``AppConfig.ready``."""
    _KINDS[kind.name] = kind
    return kind


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def job_kind_get(kind: JobKind | str) -> JobKind:
    """The registered kind, by object or name; KeyError for an unknown name."""
    return kind if isinstance(kind, JobKind) else _KINDS[kind]


def job_kind_for_task(task_name: str) -> JobKind | None:
    return next((kind for kind in _KINDS.values() if kind.task_name == task_name), None)


# --- Publishing ------------------------------------------------------------------------


def job_publish(*, kind: JobKind | str, job_id: int) -> None:
    """Call the kind's ``publish`` with the row as stored now (nothing if it is gone)."""
    kind = job_kind_get(kind)
    row = kind.model._default_manager.filter(pk=job_id).first()
    if row is None:
        return
    try:
        kind.publish(row)
    except Exception:  # a lost event must not undo a state change
        logger.exception("could not publish the state of %s %s", kind.name, job_id)


def _publish_after_commit(kind: JobKind, job_id: int) -> None:
    from webapp.core import jobs  # through the package, where tests replace ``job_publish``

    transaction.on_commit(partial(jobs.job_publish, kind=kind, job_id=job_id))


def job_key(*, kind: JobKind | str, job: Any, part: str) -> str:
    """The Redis key of ``job``'s ``part`` (``log``, ``stop``, ...): ``job:<kind>:<id>.<created µs>:<part>``.

    The creation time makes keys unique even where a database reuses ids (a
    test database rolled back, a fresh database beside an old Redis).
    """
    name = kind if isinstance(kind, str) else kind.name
    return f"job:{name}:{job.pk}.{int(job.created_at.timestamp() * 1_000_000)}:{part}"


def stop_flag_key(*, kind: JobKind | str, job: Any) -> str:
    """The Redis key whose presence (value: the reason) asks the worker to stop ``job``."""
    return job_key(kind=kind, job=job, part="stop")


def _stop_queue_key(kind: JobKind, job: Any) -> str:
    return job_key(kind=kind, job=job, part="stopq")

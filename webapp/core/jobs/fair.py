"""Admission and fair order: per-person quotas of live jobs, and the next job in fair order for a ticket."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.expressions import Window
from django.db.models.functions import Coalesce, RowNumber

from webapp.core.jobs.admission import Admission, admission_run
from webapp.core.jobs.ends import job_claim
from webapp.core.jobs.kinds import LIVE_STATUSES, JobKind, JobStatus, job_kind_get, job_kinds

logger = logging.getLogger(__name__)


class QuotaExceeded(ValidationError):
    """A person asked for more live jobs of a kind than they may have at once; nothing was written.

    A ``ValidationError`` (code ``quota``), so every form and socket that
    shows a service's validation errors shows this one too.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, code="quota")


def job_quota_check(
    *, kind: JobKind | str, limit: int, what: str, lock: models.Model | None = None, admit: Admission | None = None,
    **owner: Any,
) -> None:
    """Raise ``QuotaExceeded`` if the live rows of ``kind`` matching ``owner`` already number ``limit``.

    Call it inside the transaction that creates the job. ``lock`` (the
    owner's row) is locked first with ``SELECT ... FOR UPDATE`` where the
    database has it, so two racing requests of one owner take turns and
    cannot both pass; SQLite serialises writing transactions anyway.
    ``limit`` <= 0 means no limit. Then, with ``admit`` (who the job is
    for), the registered admission checks (``admission_register``: budgets).
    """
    kind = job_kind_get(kind)
    if limit > 0:
        if lock is not None:
            list(type(lock)._default_manager.select_for_update().filter(pk=lock.pk).values_list("pk", flat=True))
        live = kind.model._default_manager.filter(status__in=LIVE_STATUSES, **owner).count()
        if live >= limit:
            raise QuotaExceeded(
                f"You already have {live} {what}; the limit is {limit}. Wait for one to finish, or stop one."
            )
    if admit is not None:
        admission_run(replace(admit, kind=kind.name, queue=kind.queue))


def job_live_count(*, queue: str, owner_id: int) -> int:
    """Live (queued or running) jobs of ``owner_id`` over every registered kind on ``queue`` that names an ``owner``."""
    return sum(
        kind.model._default_manager.filter(status__in=LIVE_STATUSES, **{kind.owner: owner_id}).count()
        for kind in job_kinds()
        if kind.queue == queue and kind.owner
    )


def job_quota_check_queue(
    *, queue: str, owner_id: int, limit: int, what: str, adding: int = 1, lock: models.Model | None = None,
    admit: Admission | None = None,
) -> None:
    """Raise ``QuotaExceeded`` unless ``owner_id`` may add ``adding`` live jobs on ``queue``, all kinds together.

    One person's share of a queue that several kinds share (chat replies and API
    text jobs on ``text``): however they send work, they hold at most ``limit``
    of it, so their flood never queues more than that ahead of anyone else.
    Call it inside the transaction that creates the jobs; ``lock`` and ``admit``
    as in ``job_quota_check``. ``limit`` <= 0 means no limit.
    """
    if limit > 0:
        if lock is not None:
            list(type(lock)._default_manager.select_for_update().filter(pk=lock.pk).values_list("pk", flat=True))
        live = job_live_count(queue=queue, owner_id=owner_id)
        if live + adding > limit:
            raise QuotaExceeded(
                f"You already have {live} {what}; the limit is {limit}. Wait for one to finish, or stop one."
            )
    if admit is not None:
        admission_run(replace(admit, queue=queue, adding=adding))


def job_owner_turn(*, queue: str, owner_id: int) -> bool:
    """Whether ``owner_id`` may start another job on ``queue`` now: no one else whose job waits there runs fewer.

    Counted over every kind on ``queue`` that names an ``owner`` (chat replies and API
    text jobs share ``text``): the fair share that image jobs get from ``job_fair_order``,
    for kinds whose tasks run their own job rather than a ticket. Two queries per kind.
    """
    running: dict[int, int] = {}
    waiting: set[int] = set()
    for kind in job_kinds():
        if kind.queue != queue or not kind.owner:
            continue
        manager = kind.model._default_manager
        counts = manager.filter(status=JobStatus.RUNNING).values(kind.owner).annotate(n=Count("pk")).order_by()
        for row in counts:
            running[row[kind.owner]] = running.get(row[kind.owner], 0) + int(row["n"])
        waiting.update(manager.filter(status=JobStatus.QUEUED).values_list(kind.owner, flat=True).distinct())
    mine = running.get(owner_id, 0)
    return not any(running.get(other, 0) < mine for other in waiting if other is not None and other != owner_id)


# A deferred task goes to the back of its queue; after this many turns it runs anyway, so a
# waiting job whose own message was lost never holds another for ever.
MAX_DEFERRALS = 20


def job_defer_unfair(*, kind: JobKind | str, job_id: int, deferred: int = 0) -> bool:
    """At a task's start: if it is not its owner's turn (``job_owner_turn``), send the task again
    to the back of the queue and return True (the task then does nothing); else False: run it.

    So one person's flood, however it was sent, never starts ahead of someone else's
    waiting job while it already runs more than they do.
    """
    from webapp.core import jobs  # through the package, where tests replace ``task_send``

    kind = job_kind_get(kind)
    if not kind.owner or deferred >= MAX_DEFERRALS:
        return False
    owner_id = kind.model._default_manager.filter(pk=job_id, status=JobStatus.QUEUED).values_list(
        kind.owner, flat=True).first()
    if owner_id is None or job_owner_turn(queue=kind.queue, owner_id=owner_id):
        return False
    try:
        jobs.task_send(kind.task_name, args=[job_id, deferred + 1], queue=kind.queue)
    except Exception:  # the broker away: run it now rather than lose it
        logger.warning("could not defer %s %s; running it now", kind.name, job_id, exc_info=True)
        return False
    return True


def job_fair_order(*, kind: JobKind | str) -> Any:
    """The queued rows of a fair kind as a queryset in fair order, each annotated with ``fair_round``.

    A job's round is 1 + the number of its owner's jobs ahead of it: queued
    before it, plus running now. Rounds go first; within a round the owner
    served least recently goes first (never served: first of all), then the
    oldest job. So with 5 people queueing 10 jobs each every person's first
    job comes before any person's second, also on a single worker that
    finishes each job before it picks the next (where a bare "oldest first"
    would hand the first person all ten). One query (a window function and
    two subqueries), on SQLite and PostgreSQL alike.
    """
    kind = job_kind_get(kind)
    if not kind.fair_by:
        raise ValueError(f"job kind {kind.name} is not served in fair order")
    manager = kind.model._default_manager
    same_owner = manager.filter(**{kind.fair_by: OuterRef(kind.fair_by)}).order_by()
    running = same_owner.filter(status=JobStatus.RUNNING).values(kind.fair_by).annotate(n=Count("pk")).values("n")
    last_served = same_owner.filter(started_at__isnull=False).order_by("-started_at").values("started_at")[:1]
    rank = Window(RowNumber(), partition_by=[F(kind.fair_by)], order_by=[F("created_at").asc(), F("pk").asc()])
    return (
        manager.filter(status=JobStatus.QUEUED)
        .annotate(
            fair_round=rank + Coalesce(Subquery(running, output_field=IntegerField()), Value(0)),
            last_served=Subquery(last_served),
        )
        .order_by("fair_round", F("last_served").asc(nulls_first=True), "created_at", "pk")
    )


def job_fair_positions(*, kind: JobKind | str) -> dict[int, int]:
    """Every queued job's place in the fair order (1 = next to start), by id, in one query."""
    ids = job_fair_order(kind=kind).values_list("pk", flat=True)
    return {pk: place for place, pk in enumerate(ids, start=1)}


def job_pick(
    *, kind: JobKind | str, worker: str, task_id: str, values: dict[str, Any] | None = None, candidates: int = 8
) -> int | None:
    """Claim the next job in fair order for the ticket ``task_id``; its id, or None if none is left.

    The candidates come in fair order; each is locked with ``SELECT ... FOR
    UPDATE SKIP LOCKED`` where the database has it (PostgreSQL: a row another
    worker is picking is skipped, not waited for) and claimed with the
    lifecycle's conditional UPDATE, so two racing workers never run one job
    twice. The ticket's id is written on the job it picked (the lost-task
    hook fails that one). A ticket delivered again after it already picked
    a job picks nothing.
    """
    kind = job_kind_get(kind)
    manager = kind.model._default_manager
    if manager.filter(task_id=task_id, started_at__isnull=False).exists():
        return None  # a duplicate delivery of a ticket already used
    while True:
        ahead = list(job_fair_order(kind=kind).values_list("pk", flat=True)[:candidates])
        if not ahead:
            return None
        for job_id in ahead:
            with transaction.atomic():
                locked = manager.select_for_update(skip_locked=True).filter(pk=job_id, status=JobStatus.QUEUED)
                if not locked.values_list("pk", flat=True).first():
                    continue
                if job_claim(kind=kind, job_id=job_id, worker=worker, values={**(values or {}), "task_id": task_id}):
                    return job_id

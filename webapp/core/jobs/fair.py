"""Admission and fair order: per-person quotas of live jobs, and the next job in fair order for a ticket."""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.expressions import Window
from django.db.models.functions import Coalesce, RowNumber

from webapp.core.jobs.ends import job_claim
from webapp.core.jobs.kinds import LIVE_STATUSES, JobKind, JobStatus, job_kind_get

logger = logging.getLogger(__name__)


class QuotaExceeded(ValidationError):
    """A person asked for more live jobs of a kind than they may have at once; nothing was written.

    A ``ValidationError`` (code ``quota``), so every form and socket that
    shows a service's validation errors shows this one too.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, code="quota")


def job_quota_check(
    *, kind: JobKind | str, limit: int, what: str, lock: models.Model | None = None, **owner: Any
) -> None:
    """Raise ``QuotaExceeded`` if the live rows of ``kind`` matching ``owner`` already number ``limit``.

    Call it inside the transaction that creates the job. ``lock`` (the
    owner's row) is locked first with ``SELECT ... FOR UPDATE`` where the
    database has it, so two racing requests of one owner take turns and
    cannot both pass; SQLite serialises writing transactions anyway.
    ``limit`` <= 0 means no limit.
    """
    kind = job_kind_get(kind)
    if limit <= 0:
        return
    if lock is not None:
        list(type(lock)._default_manager.select_for_update().filter(pk=lock.pk).values_list("pk", flat=True))
    live = kind.model._default_manager.filter(status__in=LIVE_STATUSES, **owner).count()
    if live >= limit:
        raise QuotaExceeded(
            f"You already have {live} {what}; the limit is {limit}. Wait for one to finish, or stop one."
        )


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

"""The life of a job, one implementation for every kind: chat replies, image jobs, and those to come.

    queued --claim--> running --> done | stopped | failed
       |                 |
       +-- stop, expire -+-- stop flag (watched off the compute thread), heartbeat, stale sweep (beat)

A kind of job is a model whose rows carry the lifecycle columns ``status``
(``JobStatus``), ``reason``, ``worker``, ``started_at``, ``heartbeat_at``,
``finished_at`` and ``created_at``, plus a Celery task, registered once as a
``JobKind`` (in its app's ``AppConfig.ready``). The kind adds only what is
its own: how to run it, how to store its result, and how to tell watchers
that a row changed state. Everything else lives here:

- web side: ``job_enqueue`` (by task name, after commit), ``job_stop``,
  ``job_expire`` (a job no worker took in time);
- worker side: ``job_claim`` (idempotent), ``job_running`` (heartbeat and
  stop watch, one helper thread each), ``job_finish``, ``job_fail`` (and
  ``job_fail_logged``, the generic failure with an error id);
- ``jobs_sweep_stale`` (Celery beat runs ``core.sweep_stale_jobs``; a starting
  worker sweeps its own jobs) and the worker's signal hooks.

Tasks stay thin: they take the id, call their app's service (which uses the
functions here) and fail the job on an unexpected error. A pool process that
dies never reaches its task's own ``except``: the ``task_failure`` hook below
fails its job from the worker's main process.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from celery.signals import task_failure, worker_init, worker_ready
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.expressions import Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from webapp.core import events
from webapp.core.errors import error_logged, public_failure
from webapp.core.redis import get_redis

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
    transaction.on_commit(partial(job_publish, kind=kind, job_id=job_id))


# --- The web side: enqueue, stop ----------------------------------------------------------


def task_send(name: str, *, args: list[Any], queue: str, task_id: str | None = None) -> None:
    """The one place a job leaves for the broker, by task name (tests replace it)."""
    from webapp.celery import app

    app.send_task(name, args=args, queue=queue, task_id=task_id)


def _send(*, kind: JobKind, job_id: int, task_id: str | None) -> None:
    try:
        task_send(kind.task_name, args=[job_id], queue=kind.queue, task_id=task_id)
    except Exception:  # the broker is down: say so rather than stay queued forever
        error_id = error_logged(logger, "could not enqueue %s %s", kind.name, job_id)
        job_fail(kind=kind, job_id=job_id, reason=f"Could not reach the job queue (error id {error_id}).")


def job_enqueue(*, kind: JobKind | str, job_id: int, task_id: str | None = None) -> None:
    """Send the kind's task for ``job_id`` to its queue once the current transaction commits.

    Outside a transaction it goes at once. If the broker cannot be reached the
    job ends failed with that reason, so nothing waits in "queued" forever.
    """
    transaction.on_commit(partial(_send, kind=job_kind_get(kind), job_id=job_id, task_id=task_id))


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
            _publish_after_commit(kind, job.pk)
            return JobStatus.STOPPED
    status = manager.filter(pk=job.pk).values_list("status", flat=True).first()
    if status == JobStatus.RUNNING:
        job_stop_request(kind=kind, job=job, reason=reason)
    return str(status or JobStatus.STOPPED)


# --- The worker side: claim, run, finish, fail ----------------------------------------------


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
) -> bool:
    """running -> ``status`` (done, stopped or failed) with ``values``, in one conditional UPDATE.

    False when the row is no longer running (swept, failed by a hook, deleted):
    nothing is written then. Call it inside the transaction that stores the
    result, so the result and the end commit together. ``publish=False`` for
    a kind that announces its own end (chat's reply stream).
    """
    kind = job_kind_get(kind)
    if status not in END_STATUSES:
        raise ValueError(f"{status!r} is not an end status")
    now = timezone.now()
    with transaction.atomic():
        updated = kind.model._default_manager.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=status, reason=reason[:2000], finished_at=now, heartbeat_at=now, **(values or {})
        )
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

# --- Fair order: each task of a fair kind is a ticket for "the next fair job" -----------------


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


def job_live_count(*, queue: str, owner_id: int) -> int:
    """Live (queued or running) jobs of ``owner_id`` over every registered kind on ``queue`` that names an ``owner``."""
    return sum(
        kind.model._default_manager.filter(status__in=LIVE_STATUSES, **{kind.owner: owner_id}).count()
        for kind in _KINDS.values()
        if kind.queue == queue and kind.owner
    )


def job_quota_check_queue(
    *, queue: str, owner_id: int, limit: int, what: str, adding: int = 1, lock: models.Model | None = None
) -> None:
    """Raise ``QuotaExceeded`` unless ``owner_id`` may add ``adding`` live jobs on ``queue``, all kinds together.

    One person's share of a queue that several kinds share (chat replies and API
    text jobs on ``text``): however they send work, they hold at most ``limit``
    of it, so their flood never queues more than that ahead of anyone else.
    Call it inside the transaction that creates the jobs; ``lock`` as in
    ``job_quota_check``. ``limit`` <= 0 means no limit.
    """
    if limit <= 0:
        return
    if lock is not None:
        list(type(lock)._default_manager.select_for_update().filter(pk=lock.pk).values_list("pk", flat=True))
    live = job_live_count(queue=queue, owner_id=owner_id)
    if live + adding > limit:
        raise QuotaExceeded(
            f"You already have {live} {what}; the limit is {limit}. Wait for one to finish, or stop one."
        )


def job_owner_turn(*, queue: str, owner_id: int) -> bool:
    """Whether ``owner_id`` may start another job on ``queue`` now: no one else whose job waits there runs fewer.

    Counted over every kind on ``queue`` that names an ``owner`` (chat replies and API
    text jobs share ``text``): the fair share that image jobs get from ``job_fair_order``,
    for kinds whose tasks run their own job rather than a ticket. Two queries per kind.
    """
    running: dict[int, int] = {}
    waiting: set[int] = set()
    for kind in _KINDS.values():
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
    kind = job_kind_get(kind)
    if not kind.owner or deferred >= MAX_DEFERRALS:
        return False
    owner_id = kind.model._default_manager.filter(pk=job_id, status=JobStatus.QUEUED).values_list(
        kind.owner, flat=True).first()
    if owner_id is None or job_owner_turn(queue=kind.queue, owner_id=owner_id):
        return False
    try:
        task_send(kind.task_name, args=[job_id, deferred + 1], queue=kind.queue)
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


def heartbeat_seconds() -> float:
    return float(getattr(settings, "JOB_HEARTBEAT_SECONDS", 5))


def stale_seconds() -> float:
    return float(getattr(settings, "JOB_STALE_SECONDS", 60))


class JobRun:
    """The running side of one claimed job: a heartbeat thread and a stop-watch thread.

    ``should_stop()`` is the engine's stop callable: it reads two events and
    does no I/O, so a stop lands within a step or token and the compute
    thread never waits on a round trip. It turns true when someone asked to
    stop the job (``stopped``, with ``stop_reason``), also before the job
    started, or when the heartbeat found the row no longer running (``lost``:
    swept, failed by a hook, deleted), so the worker stops wasting compute.

    The heartbeat writes ``heartbeat_at`` and whatever ``progress()`` returns
    every ``JOB_HEARTBEAT_SECONDS``. Use it as a context manager
    (``job_running``); leaving it ends both threads without waiting on them.
    """

    def __init__(
        self,
        *,
        kind: JobKind | str,
        job: Any,
        progress: Callable[[], dict[str, Any]] | None = None,
        interval: float | None = None,
        poll: float = 1.0,
    ) -> None:
        self.kind = job_kind_get(kind)
        self.job_id = job.pk
        self.progress = progress
        self.interval = heartbeat_seconds() if interval is None else interval
        self.poll = poll
        self.stop_reason = ""
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._closed = threading.Event()
        self._queue_key = _stop_queue_key(self.kind, job)
        flag = get_redis().get(stop_flag_key(kind=self.kind, job=job))  # a stop sent before the start
        if flag is not None:
            self._stopped(flag)
        name = f"{self.kind.name}-{self.job_id}"
        self._watch_thread = threading.Thread(target=self._watch, name=f"stop-watch-{name}", daemon=True)
        self._beat_thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)

    def __enter__(self) -> JobRun:
        self._watch_thread.start()
        self._beat_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()

    def should_stop(self) -> bool:
        return self._stop.is_set() or self._lost.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _stopped(self, value: Any) -> None:
        self.stop_reason = value.decode() if isinstance(value, bytes) else str(value or "")
        self._stop.set()

    def _watch(self) -> None:
        client = get_redis()
        while not self._closed.is_set() and not self._stop.is_set():
            try:
                popped = client.blpop([self._queue_key], timeout=self.poll)
                if popped:
                    self._stopped(popped[1])  # type: ignore[index]
            except Exception:  # Redis away for a moment: keep watching
                logger.warning("stop watch of %s %s: Redis unavailable", self.kind.name, self.job_id, exc_info=True)
                self._closed.wait(0.5)

    def _beat(self) -> None:
        manager = self.kind.model._default_manager
        try:
            while not self._closed.wait(self.interval):
                try:
                    values = self.progress() if self.progress is not None else {}
                    alive = manager.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                        heartbeat_at=timezone.now(), **values
                    )
                except Exception:  # the database away for a moment: the sweep decides, not this thread
                    logger.warning("heartbeat of %s %s failed", self.kind.name, self.job_id, exc_info=True)
                    continue
                if not alive and not self._closed.is_set():
                    self._lost.set()
                    return
        finally:
            connection.close()


def job_running(
    *, kind: JobKind | str, job: Any, progress: Callable[[], dict[str, Any]] | None = None
) -> JobRun:
    """``with job_running(kind=..., job=row) as run: engine(..., should_stop=run.should_stop)``."""
    return JobRun(kind=kind, job=job, progress=progress)


# --- The sweep ------------------------------------------------------------------------------


def jobs_sweep_stale(*, worker: str = "", kinds: Iterable[JobKind] | None = None) -> int:
    """Fail running jobs whose worker is gone, of every kind; return how many.

    Gone: no heartbeat for ``JOB_STALE_SECONDS``, or, when ``worker`` is given
    (a worker starting under that name), claimed by that very worker, which
    is running nothing yet. Celery beat runs it every ``JOB_SWEEP_SECONDS``.
    """
    limit = stale_seconds()
    cutoff = timezone.now() - timedelta(seconds=limit)
    count = 0
    for kind in job_kinds() if kinds is None else kinds:
        manager = kind.model._default_manager
        running = manager.filter(status=JobStatus.RUNNING)
        stale = running.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
        reason = f"The worker stopped responding (no heartbeat for {limit:.0f} s)."
        for job_id in list(stale.values_list("pk", flat=True)):
            count += job_fail(kind=kind, job_id=job_id, reason=reason)
        if worker:
            for job_id in list(running.filter(worker=worker).values_list("pk", flat=True)):
                count += job_fail(kind=kind, job_id=job_id, reason="The worker restarted while running this job.")
    return count


# --- The worker's signal hooks (connected when Celery imports core.tasks) ---------------------


def _pool_forks(worker: Any) -> bool:
    pool = getattr(worker, "pool_cls", "prefork")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{getattr(pool, '__name__', '')}"
    return not any(word in name.lower() for word in ("solo", "thread", "eventlet", "gevent"))


@worker_init.connect
def publish_without_thread_in_main_process(sender: Any = None, **kwargs: Any) -> None:
    """Celery's main process forks the pool: it must never start the publisher thread.

    (A worker whose pool does not fork runs its tasks in this very process,
    which keeps the fast threaded publisher.)
    """
    if sender is None or _pool_forks(sender):
        events.publish_without_thread()


@task_failure.connect
def fail_job_of_a_lost_task(sender: Any = None, args: Any = None, exception: Any = None, **kwargs: Any) -> None:
    """A pool process that dies mid-job (killed, out of memory) never reaches its task's own
    handler; the worker's main process reports the loss here. A no-op for a job already ended."""
    kind = job_kind_for_task(getattr(sender, "name", "") or "")
    if kind is None or not args:
        return
    try:
        error_id = error_logged(logger, "the worker process was lost during %s %s: %s", kind.name, args[0], exception,
                                exc_info=False)
        reason = f"The worker process was lost while running this job (error id {error_id})."
        if kind.fair_by:  # a ticket: fail the job it picked, if any (not the one that bought it)
            picked = kind.model._default_manager.filter(task_id=kwargs.get("task_id") or "", status=JobStatus.RUNNING)
            for job_id in list(picked.values_list("pk", flat=True)):
                job_fail(kind=kind, job_id=job_id, reason=reason)
        else:
            job_fail(kind=kind, job_id=int(args[0]), reason=reason)
    except Exception:
        logger.exception("could not fail the job of a lost %s task", kind.task_name)
    finally:
        if events.in_forking_parent():
            connection.close()  # no connection for the next fork to inherit


@worker_ready.connect
def sweep_on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """A starting worker fails what its previous self (same name) left running, and any stale job."""
    try:
        failed = jobs_sweep_stale(worker=getattr(sender, "hostname", "") or "")
        if failed:
            logger.warning("failed %d jobs left running by a stopped worker", failed)
    finally:
        if events.in_forking_parent():
            connection.close()  # no connection for the next fork to inherit

"""A running job: its heartbeat and its stop watch, one helper thread each."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from webapp.core.jobs.kinds import JobKind, JobStatus, _stop_queue_key, job_kind_get, stop_flag_key
from webapp.core.redis import get_redis

logger = logging.getLogger(__name__)


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

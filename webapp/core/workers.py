"""Which Celery workers are alive, seen through heartbeats they write to Redis.

Every worker's main process writes one Redis hash every
``WORKER_HEARTBEAT_SECONDS`` (its name, host, queues, last beat). The hash
expires after ``WORKER_FORGET_SECONDS``, so a worker that died shows as
not alive for a while, then disappears. Reading them costs one SCAN and
no broadcast: ``/healthz``, ``/metrics`` and ``manage.py queues`` answer
in milliseconds, even with no worker at all (a ``celery inspect ping``
waits for its whole timeout then).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import bootsteps
from django.conf import settings

from webapp.core.redis import get_redis

logger = logging.getLogger(__name__)

KEY_PREFIX = "atelier:worker:"


@dataclass(frozen=True)
class WorkerSeen:
    name: str
    host: str
    queues: tuple[str, ...]
    last_heartbeat: datetime
    alive: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "host": self.host, "queues": list(self.queues),
            "last_heartbeat": self.last_heartbeat.isoformat(), "alive": self.alive,
        }


def worker_heartbeat(*, name: str, queues: list[str] | tuple[str, ...], pid: int | None = None) -> None:
    """Record that worker ``name`` consuming ``queues`` is alive now."""
    key = f"{KEY_PREFIX}{name}"
    redis = get_redis()
    with redis.pipeline() as pipe:
        pipe.hset(key, mapping={
            "name": name, "host": socket.gethostname(), "pid": str(pid or os.getpid()),
            "queues": ",".join(sorted(queues)), "heartbeat": f"{time.time():.3f}",
        })
        pipe.expire(key, int(settings.WORKER_FORGET_SECONDS))
        pipe.execute()


def worker_forget(*, name: str) -> None:
    """A worker that stops cleanly removes its record at once."""
    get_redis().delete(f"{KEY_PREFIX}{name}")


def workers_seen(*, now: float | None = None) -> list[WorkerSeen]:
    """Every worker with a record, alive when its last beat is within two intervals, by name."""
    redis = get_redis()
    now = time.time() if now is None else now
    alive_within = 2 * settings.WORKER_HEARTBEAT_SECONDS + 1
    seen: list[WorkerSeen] = []
    for key in redis.scan_iter(match=f"{KEY_PREFIX}*", count=500):
        raw = {_text(k): _text(v) for k, v in redis.hgetall(key).items()}
        if "heartbeat" not in raw:
            continue
        beat = float(raw["heartbeat"])
        seen.append(WorkerSeen(
            name=raw.get("name", ""), host=raw.get("host", ""),
            queues=tuple(q for q in raw.get("queues", "").split(",") if q),
            last_heartbeat=datetime.fromtimestamp(beat, tz=UTC), alive=now - beat <= alive_within,
        ))
    return sorted(seen, key=lambda w: w.name)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def workers_by_queue(workers: list[WorkerSeen]) -> dict[str, list[WorkerSeen]]:
    queues: dict[str, list[WorkerSeen]] = {name: [] for name in settings.ATELIER_QUEUES}
    for worker in workers:
        for queue in worker.queues:
            queues.setdefault(queue, []).append(worker)
    return queues


class HeartbeatStep(bootsteps.StartStopStep):
    """A worker bootstep: beat on the worker's own timer, in its main process (no thread to fork)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        self.beat(worker)
        self.tref = worker.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self.beat, (worker,), priority=10)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        try:
            worker_forget(name=worker.hostname)
        except Exception:
            logger.warning("could not remove the heartbeat record of %s", worker.hostname, exc_info=True)

    def beat(self, worker: Any) -> None:
        try:
            worker_heartbeat(name=worker.hostname, queues=list(worker.app.amqp.queues.consume_from))
        except Exception:  # Redis away for a moment: the next beat tries again
            logger.warning("worker heartbeat failed", exc_info=True)

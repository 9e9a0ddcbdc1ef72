"""Reads for operators: are the database, Redis and storage reachable, how deep are the
queues, which workers are alive. Used by ``/healthz``, ``/metrics`` and ``manage.py queues``."""
from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from webapp.core.workers import WorkerSeen, workers_by_queue, workers_seen

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0
STORAGE_PROBE_DIR = "studio"


def _check(name: str, probe: Any) -> dict[str, Any]:
    try:
        probe()
    except Exception as exc:
        logger.warning("health check %s failed", name, exc_info=True)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    # A client of its own with short timeouts: a health check must not hang on a dead Redis.
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def _storage() -> None:
    # A listing, not a write. On S3 it proves the endpoint, the credentials and the bucket
    # (a HEAD of one object would answer 404 for a missing bucket too, and look fine).
    with contextlib.suppress(FileNotFoundError):  # local disk before the first image: the folder comes with it
        default_storage.listdir(STORAGE_PROBE_DIR)


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in the broker per queue (None where the broker did not say)."""
    from kombu.exceptions import ChannelError

    from webapp.celery import app

    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)
            channel = conn.default_channel
            for name in settings.ATELIER_QUEUES:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except ChannelError:  # Redis drops an empty list: the queue holds nothing
                    depths[name] = 0
    except Exception:
        logger.warning("could not read the queue depths", exc_info=True)
        return dict.fromkeys(settings.ATELIER_QUEUES)
    return depths


def _worker_summary(workers: list[WorkerSeen], *, detailed: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {"alive": sum(1 for w in workers if w.alive)}
    if detailed:
        summary["workers"] = [w.as_dict() for w in workers]
    return summary


def health_report(*, detailed: bool) -> dict[str, Any]:
    """The whole report; ``status`` is "ok" when the database, Redis and storage answer.

    Workers don't decide the status (the web side is healthy without them)
    but are listed by queue: how many are alive, and, when ``detailed``,
    each one's name, host, queues and last heartbeat.
    """
    checks = {"database": _check("database", _database), "redis": _check("redis", _redis),
              "storage": _check("storage", _storage)}
    report: dict[str, Any] = {"status": "ok" if all(c["ok"] for c in checks.values()) else "error", **checks}
    try:
        by_queue = workers_by_queue(workers_seen()) if checks["redis"]["ok"] else {}
    except Exception:
        logger.warning("could not read worker heartbeats", exc_info=True)
        by_queue = {}
    report["workers"] = {queue: _worker_summary(workers, detailed=detailed) for queue, workers in by_queue.items()}
    return report

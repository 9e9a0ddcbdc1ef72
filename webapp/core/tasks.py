"""Core's Celery tasks: the health probe and the beat-driven sweep of stale jobs.

Importing this module (Celery's autodiscovery does, in every worker) also
connects the job lifecycle's worker hooks in ``webapp.core.jobs``.
"""
from __future__ import annotations

import socket

from celery import shared_task

from webapp.core import jobs


@shared_task(name="core.ping")
def ping(value: str) -> dict[str, str]:
    """A health probe: proves that a worker consumes the queue and answers."""
    return {"echo": value, "host": socket.gethostname()}


@shared_task(name="core.sweep_stale_jobs")
def sweep_stale_jobs() -> int:
    """Fail running jobs of every kind whose worker stopped sending heartbeats (Celery beat runs it)."""
    return jobs.jobs_sweep_stale()

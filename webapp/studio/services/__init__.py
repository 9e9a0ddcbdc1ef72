"""Writes of the studio: creating, running, cancelling and failing image jobs.

The web process calls ``job_create``, ``job_rerun`` and ``job_cancel``; the
Celery worker calls ``job_run`` (which loads the engine) and ``job_fail``.
Nothing here imports torch at module level.
"""
from __future__ import annotations

from webapp.studio.services.assets import asset_record_download
from webapp.studio.services.jobs import (
    CANCEL_FLAG_TTL,
    cancel_flag_key,
    job_cancel,
    job_create,
    job_fail,
    job_rerun,
    job_sweep_stale,
)
from webapp.studio.services.runner import (
    CancelWatch,
    JobHeartbeat,
    JobProgress,
    job_complete,
    job_mark_cancelled,
    job_run,
    job_start,
)

__all__ = [
    "CANCEL_FLAG_TTL",
    "CancelWatch",
    "JobHeartbeat",
    "JobProgress",
    "asset_record_download",
    "cancel_flag_key",
    "job_cancel",
    "job_complete",
    "job_create",
    "job_fail",
    "job_mark_cancelled",
    "job_rerun",
    "job_run",
    "job_start",
    "job_sweep_stale",
]

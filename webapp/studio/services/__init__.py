"""Writes of the studio: creating, running, stopping and failing image jobs.

The web process calls ``job_create``, ``job_rerun`` and ``job_cancel``; the
Celery worker calls ``job_pick`` (the next job in fair order), ``job_run`` (which
loads the engine) and ``job_fail``.
Nothing here imports torch at module level, nor the tasks: jobs are enqueued
by task name.
"""
from __future__ import annotations

from webapp.studio.services.assets import asset_record_download, assets_record_download
from webapp.studio.services.edits import edit_job_create, edit_request_clean
from webapp.studio.services.jobs import IMAGE_JOB, job_cancel, job_create, job_fail, job_rerun
from webapp.studio.services.runner import (
    JobNotRunning,
    JobProgress,
    job_complete,
    job_pick,
    job_run,
    job_start,
)

__all__ = [
    "IMAGE_JOB",
    "JobNotRunning",
    "JobProgress",
    "asset_record_download",
    "assets_record_download",
    "edit_job_create",
    "edit_request_clean",
    "job_cancel",
    "job_complete",
    "job_create",
    "job_fail",
    "job_pick",
    "job_rerun",
    "job_run",
    "job_start",
]

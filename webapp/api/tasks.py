"""Celery entry point of the API's text jobs. Claiming, the heartbeat, the stop watch, the sweep
and the hooks for lost or restarted workers are the job lifecycle's (``webapp.core.jobs``)."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from webapp.api import services
from webapp.api.services.text import TEXT_JOB
from webapp.core.jobs import job_fail_logged


@shared_task(name="api.run_text_job", bind=True, acks_late=True, ignore_result=True)
def run_text_job(self: Any, job_id: int, deferred: int = 0) -> None:
    """Run one API text job (unless it is not its user's turn on the text queue: then it waits its
    turn at the back); anything that escapes marks it failed (generic reason, error id)."""
    if services.text_job_defer_unfair(job_id=job_id, deferred=deferred):
        return
    try:
        services.text_job_run(job_id=job_id, worker=self.request.hostname or "")
    except Exception:
        job_fail_logged(kind=TEXT_JOB, job_id=job_id, what="The completion")
        raise

"""Celery entry points of the API's text jobs, and the worker hooks that keep them honest."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import task_failure, worker_ready

from webapp.api import services

logger = logging.getLogger(__name__)


@shared_task(name="api.run_text_job", bind=True, acks_late=True, ignore_result=True)
def run_text_job(self, job_id: int) -> None:
    """Run one API text job; anything that escapes marks it failed."""
    try:
        services.text_job_run(job_id=job_id, worker=self.request.hostname or "")
    except Exception as exc:
        services.text_job_fail(job_id=job_id, reason=f"{type(exc).__name__}: {exc}")
        raise


@worker_ready.connect
def fail_orphaned_text_jobs(sender: object = None, **kwargs: object) -> None:
    from django.db import connection

    try:
        count = services.text_jobs_fail_stale(worker=getattr(sender, "hostname", "") or "")
        if count:
            logger.warning("marked %d orphaned API text jobs as failed", count)
    finally:
        connection.close()


@task_failure.connect(sender=run_text_job)
def fail_text_job_of_a_lost_task(sender: object = None, args: tuple = (), exception: object = None, **kwargs: object) -> None:
    if args:
        services.text_job_fail(job_id=int(args[0]), reason=f"The worker process was lost: {exception}")

"""Celery entry points of reviews."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from webapp.core.jobs import job_fail_logged
from webapp.reviews import services
from webapp.reviews.services.exports import EXPORT_JOB


@shared_task(name="reviews.build_approved_export", bind=True, acks_late=True, ignore_result=True)
def build_approved_export(self: Any, export_id: int) -> None:
    """Build one export of an approved set. Any error ends it failed: the user sees a generic reason
    with an error id, the log the detail."""
    try:
        services.export_build(export_id=export_id, worker=self.request.hostname or "")
    except Exception:
        job_fail_logged(kind=EXPORT_JOB, job_id=export_id, what="The export")


@shared_task(name="reviews.expire_exports", ignore_result=True)
def expire_exports() -> int:
    """Delete export zips older than ``EXPORT_TTL_DAYS`` (Celery beat runs it on the ``maintenance`` queue)."""
    return services.exports_expire()

"""Celery entry points of reviews."""
from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from webapp.core.errors import error_logged, public_failure
from webapp.reviews import services

logger = logging.getLogger(__name__)


@shared_task(name="reviews.build_approved_export", bind=True, acks_late=True, ignore_result=True)
def build_approved_export(self: Any, export_id: int) -> None:
    """Build one export of an approved set. Any error ends it failed with a generic reason and an error id."""
    try:
        services.export_build(export_id=export_id, worker=self.request.hostname or "")
    except Exception:
        error_id = error_logged(logger, "export %s failed", export_id)
        services.export_fail(export_id=export_id, reason=public_failure("The export", error_id))


@shared_task(name="reviews.expire_exports", ignore_result=True)
def expire_exports() -> int:
    """Delete export zips older than ``EXPORT_TTL_DAYS`` (Celery beat runs it on the ``maintenance`` queue)."""
    return services.exports_expire()

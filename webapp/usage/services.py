"""Writes of the usage app: the record of a finished job."""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from webapp.usage.metering import job_read
from webapp.usage.models import Interface, UsageRecord

logger = logging.getLogger(__name__)


def usage_record_create(*, kind: Any, job_id: int, status: str, measured: dict[str, Any] | None = None
                        ) -> UsageRecord | None:
    """Record what the job ``job_id`` of ``kind`` used as it ended with ``status``; None if the row is gone
    or names no team. Runs inside the transaction that ends the job (``job_finished``), in a savepoint
    of its own, so a failure here never undoes the end. Two queries to read, one to write."""
    reading = job_read(model=kind.model, job_id=job_id, owner=kind.owner, measured=measured)
    if reading is None or reading.team_id is None:
        logger.warning("no usage recorded for %s %s: no row or no team", kind.name, job_id)
        return None
    with transaction.atomic():
        return UsageRecord.objects.create(
            team_id=reading.team_id, project_id=reading.project_id, user_id=reading.user_id,
            key_id=reading.key_id, key_name=reading.key_name,
            interface=Interface.API if reading.key_id else Interface.WEB,
            kind=kind.name, job_id=job_id, model_name=reading.model_name[:200], status=status,
            prompt_tokens=reading.prompt_tokens, completion_tokens=reading.completion_tokens,
            images=reading.images, steps=reading.steps, pixels=reading.pixels,
            compute_seconds=reading.compute_seconds, queue_seconds=reading.queue_seconds,
            bytes_stored=reading.bytes_stored, job_created_at=reading.job_created_at,
            finished_at=reading.finished_at or timezone.now(),
        )


def usage_record_on_finish(sender: Any = None, *, kind: Any, job_id: int, status: str,
                           measured: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The ``job_finished`` receiver (connected in ``UsageConfig.ready``)."""
    usage_record_create(kind=kind, job_id=job_id, status=status, measured=measured)

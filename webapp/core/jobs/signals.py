"""The end of a job as an extension point: ``job_finished``, sent by the lifecycle whenever a job ends.

Apps above ``core`` connect to it in their ``AppConfig.ready`` (usage records, for example);
``core`` never imports them.
"""
from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent with sender=<the JobKind> and kind, job_id, status (done, stopped or failed) and measured
# (what the worker measured that the row does not hold, e.g. {"compute_seconds": 1.2}; may be empty).
# Sent inside the transaction that ends the job, after the row was updated, so a receiver sees the row
# as it ends and what it writes commits (or rolls back) with the end. A receiver that writes wraps its
# writes in ``transaction.atomic()`` (a savepoint): its failure is logged here and never undoes the end.
job_finished = Signal()


def job_finished_send(*, kind: Any, job_id: int, status: str, measured: dict[str, Any] | None = None) -> None:
    """Send ``job_finished``; a failing receiver is logged, never raised: the end stands."""
    for receiver, result in job_finished.send_robust(
        sender=kind, kind=kind, job_id=job_id, status=status, measured=dict(measured or {})
    ):
        if isinstance(result, BaseException):
            logger.error("job_finished receiver %r failed for %s %s", receiver, kind.name, job_id,
                         exc_info=(type(result), result, result.__traceback__))

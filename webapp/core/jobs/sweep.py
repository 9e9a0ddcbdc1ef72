"""The sweep of stale jobs (Celery beat runs it; a starting worker sweeps its own)."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from webapp.core.jobs.ends import job_fail
from webapp.core.jobs.kinds import JobKind, JobStatus, job_kinds
from webapp.core.jobs.running import stale_seconds

logger = logging.getLogger(__name__)


def jobs_sweep_stale(*, worker: str = "", kinds: Iterable[JobKind] | None = None) -> int:
    """Fail running jobs whose worker is gone, of every kind; return how many.

    Gone: no heartbeat for ``JOB_STALE_SECONDS``, or, when ``worker`` is given
    (a worker starting under that name), claimed by that very worker, which
    is running nothing yet. Celery beat runs it every ``JOB_SWEEP_SECONDS``.
    """
    limit = stale_seconds()
    cutoff = timezone.now() - timedelta(seconds=limit)
    count = 0
    for kind in job_kinds() if kinds is None else kinds:
        manager = kind.model._default_manager
        running = manager.filter(status=JobStatus.RUNNING)
        stale = running.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
        reason = f"The worker stopped responding (no heartbeat for {limit:.0f} s)."
        for job_id in list(stale.values_list("pk", flat=True)):
            count += job_fail(kind=kind, job_id=job_id, reason=reason)
        if worker:
            for job_id in list(running.filter(worker=worker).values_list("pk", flat=True)):
                count += job_fail(kind=kind, job_id=job_id, reason="The worker restarted while running this job.")
    return count

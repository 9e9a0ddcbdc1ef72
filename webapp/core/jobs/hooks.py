"""The worker's signal hooks, connected when ``webapp.core.jobs`` is imported (Celery imports core.tasks)."""
from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_failure, worker_init, worker_ready
from django.db import connection

from webapp.core import events
from webapp.core.errors import error_logged
from webapp.core.jobs.ends import job_fail
from webapp.core.jobs.kinds import JobStatus, job_kind_for_task
from webapp.core.jobs.sweep import jobs_sweep_stale

logger = logging.getLogger(__name__)


def _pool_forks(worker: Any) -> bool:
    pool = getattr(worker, "pool_cls", "prefork")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{getattr(pool, '__name__', '')}"
    return not any(word in name.lower() for word in ("solo", "thread", "eventlet", "gevent"))


@worker_init.connect
def publish_without_thread_in_main_process(sender: Any = None, **kwargs: Any) -> None:
    """Celery's main process forks the pool: it must never start the publisher thread.

    (A worker whose pool does not fork runs its tasks in this very process,
    which keeps the fast threaded publisher.)
    """
    if sender is None or _pool_forks(sender):
        events.publish_without_thread()


@task_failure.connect
def fail_job_of_a_lost_task(sender: Any = None, args: Any = None, exception: Any = None, **kwargs: Any) -> None:
    """A pool process that dies mid-job (killed, out of memory) never reaches its task's own
    handler; the worker's main process reports the loss here. A no-op for a job already ended."""
    kind = job_kind_for_task(getattr(sender, "name", "") or "")
    if kind is None or not args:
        return
    try:
        error_id = error_logged(logger, "the worker process was lost during %s %s: %s", kind.name, args[0], exception,
                                exc_info=False)
        reason = f"The worker process was lost while running this job (error id {error_id})."
        if kind.fair_by:  # a ticket: fail the job it picked, if any (not the one that bought it)
            picked = kind.model._default_manager.filter(task_id=kwargs.get("task_id") or "", status=JobStatus.RUNNING)
            for job_id in list(picked.values_list("pk", flat=True)):
                job_fail(kind=kind, job_id=job_id, reason=reason)
        else:
            job_fail(kind=kind, job_id=int(args[0]), reason=reason)
    except Exception:
        logger.exception("could not fail the job of a lost %s task", kind.task_name)
    finally:
        if events.in_forking_parent():
            connection.close()  # no connection for the next fork to inherit


@worker_ready.connect
def sweep_on_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """A starting worker fails what its previous self (same name) left running, and any stale job."""
    try:
        failed = jobs_sweep_stale(worker=getattr(sender, "hostname", "") or "")
        if failed:
            logger.warning("failed %d jobs left running by a stopped worker", failed)
    finally:
        if events.in_forking_parent():
            connection.close()  # no connection for the next fork to inherit

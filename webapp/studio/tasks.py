"""Celery entry points of the studio, and the worker hooks that keep jobs honest."""
from __future__ import annotations

import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import task_failure, worker_process_init, worker_ready

from webapp.core.errors import error_logged, public_failure
from webapp.studio import services

logger = logging.getLogger(__name__)


@shared_task(name="studio.run_image_job", bind=True, acks_late=True, ignore_result=True)
def run_image_job(self: Any, job_id: int) -> None:
    """Run one image job. Any error ends the job failed with a generic reason and an error id (the detail goes to the log)."""
    try:
        services.job_run(job_id=job_id, worker_name=self.request.hostname or "")
    except Exception:
        error_id = error_logged(logger, "image job %s failed", job_id)
        services.job_fail(job_id=job_id, reason=public_failure("The image job", error_id))


@task_failure.connect(sender=run_image_job)
def _job_lost(sender: Any = None, args: Any = None, exception: Any = None, **kwargs: Any) -> None:
    # Reached when the pool process died mid-task (WorkerLostError): the task's own except never ran.
    if args:
        error_id = error_logged(logger, "the worker process died during image job %s: %s", args[0], exception, exc_info=False)
        services.job_fail(
            job_id=int(args[0]), reason=f"The worker process died while running this job (error id {error_id}).",
            publish_once=True,
        )


@worker_ready.connect
def _sweep_on_start(sender: Any = None, **kwargs: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    failed = services.job_sweep_stale(worker_name=hostname, publish_once=True)
    if failed:
        logger.warning("failed %s image jobs left running by a stopped worker", failed)


@worker_process_init.connect
def _warm_default_model(**kwargs: Any) -> None:
    """Load the default image model in the background, so the first job does not pay for it.

    Only in workers that consume the ``image`` queue. A thread, because
    worker_process_init must return within seconds; a job that arrives
    first simply waits on the engine's load lock.
    """
    from webapp.celery import app

    if "image" not in app.amqp.queues.consume_from:
        return

    def load() -> None:
        try:
            from generation.image import DEFAULT_IMAGE_MODEL, load_image_model

            load_image_model(DEFAULT_IMAGE_MODEL)
        except Exception:
            logger.exception("could not preload the default image model")

    threading.Thread(target=load, name="warm-image-model", daemon=True).start()

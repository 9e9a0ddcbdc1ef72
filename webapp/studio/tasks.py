"""Celery entry points of the studio. The hooks for lost or restarted workers are the job
lifecycle's (``webapp.core.jobs``)."""
from __future__ import annotations

import errno
import logging
import threading
from typing import Any

from celery import shared_task
from celery.signals import worker_process_init

from webapp.core.errors import error_logged, public_failure
from webapp.studio import services

logger = logging.getLogger(__name__)


@shared_task(name="studio.run_image_job", bind=True, acks_late=True, ignore_result=True)
def run_image_job(self: Any, job_id: int) -> None:
    """A ticket bought by job ``job_id``: run the next image job in fair order, whichever it is.

    Any error ends the picked job failed with a generic reason and an error id (the detail goes to the log).
    """
    job = services.job_pick(worker=self.request.hostname or "", task_id=self.request.id or "")
    if job is None:  # nothing queued (cancelled meanwhile), or a duplicate delivery
        return
    try:
        services.job_run(job=job)
    except OSError as error:
        error_id = error_logged(logger, "image job %s failed", job.pk)
        reason = (f"The image job failed: no space left to store its images (error id {error_id})."
                  if error.errno == errno.ENOSPC else public_failure("The image job", error_id))
        services.job_fail(job_id=job.pk, reason=reason)
    except Exception:
        error_id = error_logged(logger, "image job %s failed", job.pk)
        services.job_fail(job_id=job.pk, reason=public_failure("The image job", error_id))


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

"""Job writes of the web side: create, re-run, cancel, fail, and sweep the jobs of dead workers."""
from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from webapp.core.events import get_publisher
from webapp.core.redis import get_redis
from webapp.prompt_templates.services import TemplateUseRequest, template_use_record
from webapp.prompts.services import prompt_record_create
from webapp.studio.events import studio_group_name
from webapp.studio.models import ACTIVE_STATUSES, Asset, Job, JobOrigin, JobStatus
from webapp.workspaces.models import Membership

logger = logging.getLogger(__name__)

CANCEL_FLAG_TTL = 24 * 3600
SEED_RANGE = 2**32


def cancel_flag_key(job_id: int) -> str:
    """The Redis key (and pub/sub channel) that asks the worker to stop a running job."""
    return f"studio:job:{int(job_id)}:cancel"


def job_create(
    *,
    project: Any,
    author: Any,
    request: Any,
    origin: str = JobOrigin.NEW,
    source_asset: Asset | None = None,
    template_use: TemplateUseRequest | None = None,
) -> Job:
    """Record an image job and its prompt, and enqueue it on the ``image`` queue after commit.

    ``request`` is a ``generation.image.ImageRequest``. It is checked with the
    engine's static validation first (``generation.errors.ValidationError``
    names the bad field; nothing is written then). An empty seed is drawn
    here, so the job, the prompt history and the assets all record it.
    Raises PermissionDenied unless ``author`` may write in the project.
    ``template_use`` (from the studio's template picker) is recorded as the job's lineage.
    """
    from generation.image import validate_image_request

    membership = Membership.objects.filter(team_id=project.team_id, user=author).first()
    if membership is None or not membership.can_write:
        raise PermissionDenied("Only members of the project's team who can write may generate images.")
    validate_image_request(request)
    if request.seed is None:
        request = replace(request, seed=secrets.randbelow(SEED_RANGE))
    params = request.to_dict()
    with transaction.atomic():
        record = prompt_record_create(
            project=project, author=author, kind="image", text=request.prompt, params=params,
            model_name=request.model,
        )
        job = Job.objects.create(
            project=project, author=author, prompt_record=record, origin=origin, source_asset=source_asset,
            params=params, model_name=request.model, task_id=str(uuid.uuid4()),
            steps_total=int(request.steps),
        )
        if template_use is not None:
            template_use_record(use=template_use, project=project, user=author, output_kind="job", output_id=job.pk)
        transaction.on_commit(partial(_job_enqueue, job_id=job.pk, task_id=job.task_id))
    return job


def _job_enqueue(*, job_id: int, task_id: str) -> None:
    from webapp.studio.tasks import run_image_job

    try:
        run_image_job.apply_async(args=[job_id], queue="image", task_id=task_id)
    except Exception as exc:  # the broker is down: say so rather than stay queued forever
        logger.exception("could not enqueue image job %s", job_id)
        job_fail(job_id=job_id, reason=f"Could not reach the job queue: {exc}")


def job_rerun(*, asset: Asset, author: Any, vary: bool = False) -> Job:
    """A new job with the parameters of ``asset``'s job: the same seed, or a new one when ``vary``.

    With the same seed on the same device the images come out identical.
    """
    from generation.image import ImageRequest

    params = dict(asset.job.params)
    if vary:
        params["seed"] = None
    return job_create(
        project=asset.project, author=author, request=ImageRequest.from_dict(params),
        origin=JobOrigin.VARY if vary else JobOrigin.RERUN, source_asset=asset,
    )


def job_cancel(*, job: Job, user: Any) -> Job:
    """Cancel ``user``'s own job: a queued one at once, a running one within a step.

    A running job gets a flag in Redis, announced on the same-named pub/sub
    channel; the worker's ``should_stop`` sees it after the current step
    and the worker marks the job cancelled. Returns the job as it is now.
    PermissionDenied for somebody else's job.
    """
    if job.author_id != user.pk:
        raise PermissionDenied("You can only cancel your own jobs.")
    reason = f"Cancelled by {user.get_username()}."
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, reason=reason, finished_at=now
    ):
        job.refresh_from_db()
        return job
    job.refresh_from_db()
    if job.status == JobStatus.RUNNING:
        redis = get_redis()
        redis.set(cancel_flag_key(job.pk), reason.encode(), ex=CANCEL_FLAG_TTL)
        redis.publish(cancel_flag_key(job.pk), reason.encode())
    return job


def job_sweep_stale(*, worker_name: str | None = None, publish_once: bool = False) -> int:
    """Fail running jobs whose worker is gone; return how many.

    A job is gone when its heartbeat is older than ``STUDIO_STALE_SECONDS``
    or, when ``worker_name`` is given (a worker starting up), when that very
    worker had claimed it: a worker that starts is running nothing yet.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.STUDIO_STALE_SECONDS)
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
    count = 0
    for job_id in stale.values_list("pk", flat=True):
        count += job_fail(
            job_id=job_id, reason="The worker stopped responding while running this job.", publish_once=publish_once
        )
    if worker_name:
        mine = Job.objects.filter(status=JobStatus.RUNNING, worker_name=worker_name)
        for job_id in mine.values_list("pk", flat=True):
            count += job_fail(
                job_id=job_id, reason="The worker restarted while running this job.", publish_once=publish_once
            )
    return count


def job_fail(*, job_id: int, reason: str, publish_once: bool = False) -> bool:
    """Mark a queued or running job failed with ``reason``; False if it had already ended.

    Assets are only written together with success, so a failed job has none.
    ``publish_once`` sends the event without starting this process's
    long-lived publisher thread: for Celery's main process, which forks pool
    processes, and a thread there could leave them a lock held forever.
    """
    publish = _job_publish_once if publish_once else _job_publish
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(
            status=JobStatus.FAILED, reason=reason[:2000], finished_at=timezone.now()
        )
        if updated:
            transaction.on_commit(partial(publish, job_id=job_id))
    return bool(updated)


def _job_publish_once(*, job_id: int) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    job = Job.objects.filter(pk=job_id).values("project_id", "author_id", "status").first()
    if job is None or job["author_id"] is None:
        return
    group = studio_group_name(project_id=job["project_id"], user_id=job["author_id"])
    async_to_sync(get_channel_layer().group_send)(group, {"type": "studio.job", "job_id": job_id, "status": job["status"]})


def _job_publish(*, job_id: int) -> None:
    """Tell the author's studio page that the job's state changed (the page reloads the card)."""
    job = Job.objects.filter(pk=job_id).values("project_id", "author_id", "status").first()
    if job is None or job["author_id"] is None:
        return
    group = studio_group_name(project_id=job["project_id"], user_id=job["author_id"])
    get_publisher().publish(group, {"type": "studio.job", "job_id": job_id, "status": job["status"]})

"""Job writes of the web side: create, re-run, stop; and the image job as a job kind.

An image job is a job of kind ``studio.image`` (see ``webapp.core.jobs``,
which owns claiming, the heartbeat, stop, the sweep and the worker hooks).
"""
from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from webapp.core import jobs
from webapp.core.jobs import JobKind, JobStatus
from webapp.prompt_templates.services import template_use_record
from webapp.prompt_templates.uses import TemplateUseRequest
from webapp.prompts.services import prompt_record_create
from webapp.studio.events import job_state_publish
from webapp.studio.models import Asset, Job, JobOrigin
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_require

if TYPE_CHECKING:
    from generation.image import ImageRequest

logger = logging.getLogger(__name__)

SEED_RANGE = 2**32

# Served in fair order by author: each task is a ticket for the next fair job (``jobs.job_pick``).
IMAGE_JOB = JobKind(
    name="studio.image", model=Job, task_name="studio.run_image_job", queue="image", publish=job_state_publish,
    fair_by="author_id",
    label="image",
)


def job_create(
    *,
    project: Project,
    actor: Membership,
    request: ImageRequest,
    origin: str = JobOrigin.NEW,
    source_asset: Asset | None = None,
    template_use: TemplateUseRequest | None = None,
    via: str = "",
) -> Job:
    """Record an image job and its prompt, and enqueue it on the ``image`` queue after commit.

    ``request`` is checked with the engine's static validation first
    (``generation.errors.ValidationError`` names the bad field; nothing is
    written then). An empty seed is drawn here, so the job, the prompt
    history and the assets all record it. Raises PermissionDenied unless
    ``actor`` may ``studio.create`` in the project, and ``jobs.QuotaExceeded`` when
    the author already has ``MAX_QUEUED_IMAGE_JOBS`` jobs waiting (nothing
    is written then either).
    ``template_use`` (from the studio's template picker) is recorded as the job's lineage.
    ``via`` names what made the job when it was not the browser (an API key);
    the prompt history and the asset's lineage show it.
    """
    from generation.image import validate_image_request

    membership_require(actor=actor, action="studio.create", project=project)
    validate_image_request(request)
    if request.seed is None:
        request = replace(request, seed=secrets.randbelow(SEED_RANGE))
    params = request.to_dict()
    author = actor.user
    with transaction.atomic():
        jobs.job_quota_check(
            kind=IMAGE_JOB, limit=settings.MAX_QUEUED_IMAGE_JOBS, what="image jobs waiting", lock=author,
            author=author, status=JobStatus.QUEUED,
            admit=jobs.Admission(project=project, user_id=author.pk),  # budgets
        )
        record = prompt_record_create(
            project=project, author=author, kind="image", text=request.prompt, params=params,
            model_name=request.model, source="api" if via else "web", source_label=via,
        )
        job = Job.objects.create(
            project=project, author=author, prompt_record=record, origin=origin, source_asset=source_asset,
            params=params, model_name=request.model, task_id=str(uuid.uuid4()),
            steps_total=int(request.steps),
        )
        if template_use is not None:
            template_use_record(use=template_use, project=project, user=actor.user, output_kind="job", output_id=job.pk)
        jobs.job_enqueue(kind=IMAGE_JOB, job_id=job.pk, task_id=job.task_id)
    return job


def job_rerun(*, asset: Asset, actor: Membership, vary: bool = False) -> Job:
    """A new job with the parameters of ``asset``'s job: the same seed, or a new one when ``vary``.

    With the same seed on the same device the images come out identical: when the model's weights have
    changed since (a new default model), the job runs on the registered model that keeps the asset's
    weights (``atelier-shapes-v1``), if one does.
    """
    from generation.image import ImageRequest, image_model_with_revision

    params = dict(asset.job.params)
    if vary:
        params["seed"] = None
    if params.get("model"):
        params["model"] = image_model_with_revision(params["model"], asset.model_revision)
    return job_create(
        project=asset.project, actor=actor, request=ImageRequest.from_dict(params),
        origin=JobOrigin.VARY if vary else JobOrigin.RERUN, source_asset=asset,
    )


def job_cancel(*, job: Job, actor: Membership) -> Job:
    """Stop the actor's own job: a queued one at once, a running one within a step.

    The running job's worker sees the stop flag through the lifecycle's stop
    watch and ends the job "stopped". Returns the job as it is now.
    PermissionDenied for somebody else's job (``studio.stop`` is "own" for
    every role) or a viewer.
    """
    membership_require(actor=actor, action="studio.stop", project=job.project, owner_id=job.author_id)
    jobs.job_stop(kind=IMAGE_JOB, job=job, reason=f"Cancelled by {actor.user.get_username()}.")
    job.refresh_from_db()
    return job


def job_fail(*, job_id: int, reason: str) -> bool:
    """Mark a queued or running job failed with ``reason``; False if it had already ended.

    Assets are only written together with success, so a failed job has none.
    """
    return jobs.job_fail(kind=IMAGE_JOB, job_id=job_id, reason=reason)

"""Job writes of the worker: claim, run the engine with progress and stop, store the images.

Claiming, the heartbeat and the stop watch are the job lifecycle's (``webapp.core.jobs``).
"""
from __future__ import annotations

import hashlib
import io
import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.core import jobs
from webapp.core.events import get_publisher
from webapp.core.jobs import JobStatus
from webapp.studio import lineage
from webapp.studio.events import preview_data_url, studio_group_name
from webapp.studio.models import Asset, Job, JobOrigin
from webapp.studio.services.edits import edit_request_for_job
from webapp.studio.services.jobs import IMAGE_JOB

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 256


def job_start(*, job_id: int, worker: str) -> Job | None:
    """Claim a queued job for this worker; None when it is no longer queued (stopped, failed, redelivered)."""
    if not jobs.job_claim(kind=IMAGE_JOB, job_id=job_id, worker=worker, values=_lineage()):
        return None
    return Job.objects.select_related("project").get(pk=job_id)


def _lineage() -> dict[str, Any]:
    return {"worker_host": lineage.worker_host(), "code_version": lineage.code_version()}


def job_pick(*, worker: str, task_id: str) -> Job | None:
    """Claim the next image job in fair order (by author) for the ticket ``task_id``; None if none is queued."""
    job_id = jobs.job_pick(kind=IMAGE_JOB, worker=worker, task_id=task_id, values=_lineage())
    return None if job_id is None else Job.objects.select_related("project").get(pk=job_id)


def job_run(*, job: Job) -> Job | None:
    """Run a job claimed by this worker (``job_pick`` or ``job_start``) until it is done or stopped.

    Sends throttled progress and previews to the author's studio group,
    keeps a heartbeat (with the progress), stores the images, and returns the
    finished job, or None if the job was failed meanwhile (swept). Engine errors propagate: the task marks the job failed.
    """
    from generation.image import ImageRequest, edit_images, generate_images

    progress = JobProgress(job=job)
    with jobs.job_running(kind=IMAGE_JOB, job=job, progress=progress.values) as run:
        if job.origin == JobOrigin.EDIT:
            edit = edit_request_for_job(job=job)
            result = edit_images(edit, on_step=progress, should_stop=run.should_stop, max_pixels=_edit_max_pixels())
        else:
            result = generate_images(ImageRequest.from_dict(job.params), on_step=progress, should_stop=run.should_stop)
    if result.cancelled:
        reason = run.stop_reason or "Stopped."
        if not jobs.job_finish(kind=IMAGE_JOB, job_id=job.pk, status=JobStatus.STOPPED, reason=reason):
            return None
        job.refresh_from_db()
        return job
    return job_complete(job=job, result=result)


def _edit_max_pixels() -> int:
    # An upscale or an outpaint may make a result bigger than any upload: x4 of the largest.
    return settings.MAX_UPLOAD_PIXELS * 16


class JobNotRunning(RuntimeError):
    """The job ended (failed by the sweep or a hook) while the worker was still running it."""


def job_complete(*, job: Job, result: Any) -> Job:
    """Store ``result``'s images and their thumbnails, then create the assets and end the job, atomically.

    Files go through Django's default storage under names made here. If the
    database part fails, the files already stored are deleted again, so a
    job never has half of its assets.
    """
    from generation.image import save_png

    host, version = lineage.worker_host(), lineage.code_version()
    stored: list[str] = []
    rows: list[Asset] = []
    try:
        for index, image in enumerate(result.images):
            params = {
                **result.params, "batch_index": index, "model": result.model,
                "model_revision": result.model_revision, "worker_host": host, "code_version": version,
                "job_id": job.pk,
            }
            original = io.BytesIO()
            save_png(image, original, lineage.png_params(params))
            data = original.getvalue()
            stem = f"studio/{job.project_id}/{uuid.uuid4().hex}"
            name = _store(f"{stem}.png", data, stored)
            thumb_name = _store(f"{stem}-thumb.png", _thumbnail_png(image), stored)
            rows.append(Asset(
                project_id=job.project_id, job=job, author_id=job.author_id, batch_index=index,
                file=name, thumbnail=thumb_name, byte_size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                width=image.width, height=image.height, params=params, model_name=result.model,
                model_revision=result.model_revision, scheduler=params["scheduler"], steps=params["steps"],
                guidance_scale=params["guidance_scale"], seed=params["seed"], worker_host=host,
                code_version=version,
                **_edit_lineage(job),
            ))
        with transaction.atomic():
            for row in rows:
                row.save()
                audit_record(
                    actor=job.author, team_id=job.project.team_id, project_id=job.project_id,
                    action=AuditAction.GENERATED, object_kind="image", object_id=row.pk, detail={"job": job.pk},
                )
            finished = jobs.job_finish(
                kind=IMAGE_JOB, job_id=job.pk, status=JobStatus.DONE,
                values={"model_revision": result.model_revision, "steps_done": job.steps_total,
                        "seconds_per_step": result.seconds_per_step},
            )
            if not finished:  # failed meanwhile (swept, or its worker given up for lost): keep no assets
                raise JobNotRunning(f"image job {job.pk} is no longer running")
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    job.refresh_from_db()
    return job


def _edit_lineage(job: Job) -> dict[str, Any]:
    """An edit's asset columns: its parent (the source asset; none for an upload), its mode and its mask file."""
    if job.origin != JobOrigin.EDIT:
        return {}
    return {"parent_id": job.source_asset_id, "edit_mode": job.params.get("mode", ""), "mask": job.edit_mask.name or ""}


def _store(name: str, data: bytes, stored: list[str]) -> str:
    """Save ``data`` under ``name`` (fresh: a uuid) and list it in ``stored`` before the write, so a
    write that fails half-way (a full disk) leaves no partial file behind: the caller deletes it."""
    stored.append(name)
    stored[-1] = default_storage.save(name, ContentFile(data))
    return stored[-1]


def _thumbnail_png(image: Any) -> bytes:
    thumb = image.convert("RGB")
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


class JobProgress:
    """The engine's ``on_step``: progress events and previews, each at most a few times a second.

    The first and the last step always go out. Events go through the
    process's ordered publisher, so they reach the client in step order.
    Throttling keeps the messaging (Redis, daphne, the browser) from taking
    CPU time from the denoising on small machines.
    """

    def __init__(self, *, job: Job) -> None:
        self.job_id = job.pk
        self.group = studio_group_name(project_id=job.project_id, user_id=job.author_id or 0)
        self.publisher = get_publisher()
        self.min_preview_interval = 1.0 / settings.STUDIO_PREVIEWS_PER_SECOND
        self.min_event_interval = 1.0 / settings.STUDIO_PROGRESS_PER_SECOND
        self.last_event = float("-inf")
        self.started = time.monotonic()
        self.last_preview = float("-inf")
        self.first_step_at: float | None = None
        self.step = 0
        self.total = int(job.steps_total)

    def __call__(self, step: int, total: int, preview: Any) -> None:
        now = time.monotonic()
        if self.first_step_at is None:
            self.first_step_at = now
        self.step, self.total = step, total
        edge = step in (1, total)
        if not edge and now - self.last_event < self.min_event_interval:
            return
        per_step = self.seconds_per_step or 0.0
        message: dict[str, Any] = {
            "type": "studio.progress", "job_id": self.job_id, "step": step, "total": total,
            "eta": round(per_step * (total - step), 1),
        }
        if preview is not None and (edge or now - self.last_preview >= self.min_preview_interval):
            message["preview"] = preview_data_url(preview)
            self.last_preview = now
        self.last_event = now
        self.publisher.publish(self.group, message)

    def values(self) -> dict[str, Any]:
        """What the heartbeat stores with each beat."""
        return {"steps_done": self.step, "steps_total": self.total, "seconds_per_step": self.seconds_per_step}

    @property
    def seconds_per_step(self) -> float | None:
        """Measured from the first step on: loading and prompt encoding are not steps."""
        if self.first_step_at is None:
            return None
        if self.step <= 1:
            return self.first_step_at - self.started
        return (time.monotonic() - self.first_step_at) / (self.step - 1)

"""Job writes of the worker: claim, run the engine with progress and cancel, store the images."""
from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
import uuid
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.core.events import get_publisher
from webapp.core.redis import get_redis
from webapp.studio import lineage
from webapp.studio.events import preview_data_url, studio_group_name
from webapp.studio.models import Asset, Job, JobStatus
from webapp.studio.services.jobs import _job_publish, cancel_flag_key

logger = logging.getLogger(__name__)

THUMBNAIL_MAX_SIDE = 256


def job_start(*, job_id: int, worker_name: str) -> Job | None:
    """Claim a queued job for this worker; None when it is no longer queued (cancelled, failed, redelivered)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker_name=worker_name,
            worker_host=lineage.worker_host(), code_version=lineage.code_version(),
        )
        if not claimed:
            return None
        transaction.on_commit(partial(_job_publish, job_id=job_id))
    return Job.objects.select_related("project").get(pk=job_id)


def job_run(*, job_id: int, worker_name: str) -> Job | None:
    """Run a queued job on this worker to success or cancellation.

    Sends throttled progress and previews to the author's studio group,
    keeps a heartbeat, stores the images, and returns the finished job, or
    None if the job was not queued any more. Engine errors propagate: the
    task marks the job failed.
    """
    from generation.image import ImageRequest, generate_images

    # A queued job is cancelled in the database, so a flag under this id is
    # stale (ids can come back after a database reset); only one set after the claim counts.
    get_redis().delete(cancel_flag_key(job_id))
    job = job_start(job_id=job_id, worker_name=worker_name)
    if job is None:
        return None
    request = ImageRequest.from_dict(job.params)
    progress = JobProgress(job=job)
    with JobHeartbeat(job_id=job.pk, progress=progress), CancelWatch(job_id=job.pk) as cancel:
        result = generate_images(request, on_step=progress, should_stop=cancel.is_set)
    if result.cancelled:
        flag = get_redis().get(cancel_flag_key(job.pk))
        reason = flag.decode() if isinstance(flag, bytes) else (flag or "Cancelled.")
        return job_mark_cancelled(job=job, reason=reason)
    return job_complete(job=job, result=result)


def job_mark_cancelled(*, job: Job, reason: str) -> Job:
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
            status=JobStatus.CANCELLED, reason=reason, finished_at=timezone.now()
        )
        transaction.on_commit(partial(_job_publish, job_id=job.pk))
    get_redis().delete(cancel_flag_key(job.pk))
    job.refresh_from_db()
    return job


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
            save_png(image, original, params)
            data = original.getvalue()
            stem = f"studio/{job.project_id}/{uuid.uuid4().hex}"
            name = default_storage.save(f"{stem}.png", ContentFile(data))
            stored.append(name)
            thumb_name = default_storage.save(f"{stem}-thumb.png", ContentFile(_thumbnail_png(image)))
            stored.append(thumb_name)
            rows.append(Asset(
                project_id=job.project_id, job=job, author_id=job.author_id, batch_index=index,
                file=name, thumbnail=thumb_name, byte_size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                width=image.width, height=image.height, params=params, model_name=result.model,
                model_revision=result.model_revision, scheduler=params["scheduler"], steps=params["steps"],
                guidance_scale=params["guidance_scale"], seed=params["seed"], worker_host=host,
                code_version=version,
            ))
        with transaction.atomic():
            for row in rows:
                row.save()
                audit_record(
                    actor=job.author, team_id=job.project.team_id, project_id=job.project_id,
                    action=AuditAction.GENERATED, object_kind="image", object_id=row.pk, detail={"job": job.pk},
                )
            Job.objects.filter(pk=job.pk).update(
                status=JobStatus.SUCCEEDED, finished_at=timezone.now(), model_revision=result.model_revision,
                steps_done=job.steps_total, seconds_per_step=result.seconds_per_step, heartbeat_at=timezone.now(),
            )
            transaction.on_commit(partial(_job_publish, job_id=job.pk))
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    job.refresh_from_db()
    return job


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

    @property
    def seconds_per_step(self) -> float | None:
        """Measured from the first step on: loading and prompt encoding are not steps."""
        if self.first_step_at is None:
            return None
        if self.step <= 1:
            return self.first_step_at - self.started
        return (time.monotonic() - self.first_step_at) / (self.step - 1)


class CancelWatch:
    """Listens for the job's cancel flag in a thread, so ``should_stop`` costs no round trip per step.

    Subscribes to the job's cancel channel first and then reads the flag,
    so a cancel sent before the job started is not missed either.
    """

    def __init__(self, *, job_id: int) -> None:
        self.job_id = job_id
        self._cancelled = threading.Event()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cancel-watch-{job_id}", daemon=True)

    def __enter__(self) -> CancelWatch:
        self._thread.start()
        self._subscribed.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def is_set(self) -> bool:
        return self._cancelled.is_set()

    def _run(self) -> None:
        from webapp.studio.selectors import job_cancel_requested

        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(cancel_flag_key(self.job_id))
            if job_cancel_requested(job_id=self.job_id):
                self._cancelled.set()
            self._subscribed.set()
            while not self._stop.is_set() and not self._cancelled.is_set():
                if pubsub.get_message(timeout=0.5):
                    self._cancelled.set()
        except Exception:
            logger.exception("cancel watch of job %s stopped", self.job_id)
        finally:
            self._subscribed.set()
            pubsub.close()


class JobHeartbeat:
    """A thread that tells the database, every few seconds, that the job is alive and how far it is.

    ``job_sweep_stale`` fails running jobs whose heartbeat stops.
    """

    def __init__(self, *, job_id: int, progress: JobProgress) -> None:
        self.job_id = job_id
        self.progress = progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> JobHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(settings.STUDIO_HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now(), steps_done=self.progress.step,
                    steps_total=self.progress.total, seconds_per_step=self.progress.seconds_per_step,
                )
        except Exception:
            logger.exception("heartbeat of job %s stopped", self.job_id)
        finally:
            connection.close()

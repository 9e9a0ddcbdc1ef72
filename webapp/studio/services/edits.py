"""Edit jobs: an existing image (a gallery asset or an upload) changed by the engine's edit modes.

An edit job is an image job (kind ``studio.image``: same queue, fair share,
quota, progress, previews and stop); its ``origin`` is ``edit`` and its
``params`` hold the engine's ``EditRequest.to_dict()``. The source and the
mask are decoded and checked here, before anything is written, then stored
re-encoded as PNG without metadata: the worker reads those files back.
"""
from __future__ import annotations

import io
import secrets
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from webapp.core import jobs
from webapp.core.jobs import JobStatus
from webapp.prompt_templates.services import template_use_record
from webapp.prompt_templates.uses import TemplateUseRequest
from webapp.prompts.services import prompt_record_create
from webapp.studio.models import Asset, Job, JobOrigin
from webapp.studio.services.jobs import IMAGE_JOB, SEED_RANGE
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_require

if TYPE_CHECKING:
    from generation.image import EditRequest


def _check_bytes(data: bytes, *, field: str) -> None:
    from generation.errors import ValidationError

    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise ValidationError(field, f"is {len(data)} bytes, over the limit of {settings.MAX_UPLOAD_BYTES}")


def _png(image: Any) -> bytes:
    """``image`` as a PNG with no text, EXIF or ICC chunk: nothing of the upload's metadata survives."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def edit_request_clean(*, request: EditRequest) -> EditRequest:
    """The request checked and its files re-encoded: the form of it that is stored and run.

    Raises ``generation.errors.ValidationError`` naming the field: a bad
    parameter, a file over ``MAX_UPLOAD_BYTES`` or ``MAX_UPLOAD_PIXELS``, not an
    image, an SVG, animated, CMYK, a decompression bomb, a mask of another
    size or an empty one. A variation keeps the prompt its source carried.
    """
    from generation.image import decode_edit_inputs, validate_edit_request
    from generation.image.edit_request import resolved_prompt

    _check_bytes(request.source, field="image")
    if request.mask is not None:
        _check_bytes(request.mask, field="mask")
    validate_edit_request(request)
    inputs = decode_edit_inputs(request, max_pixels=settings.MAX_UPLOAD_PIXELS)
    request = resolved_prompt(request, inputs)
    mask = _png(inputs.mask) if inputs.mask is not None else None
    return replace(request, source=_png(inputs.source), mask=mask)


def edit_job_create(
    *,
    project: Project,
    actor: Membership,
    request: EditRequest,
    source_asset: Asset | None = None,
    template_use: TemplateUseRequest | None = None,
    via: str = "",
) -> Job:
    """Check, store and enqueue one edit job; the edit's twin of ``job_create``.

    ``source_asset`` (an asset of ``project``) is the image's parent in the
    lineage; an upload has none. Raises PermissionDenied unless ``actor`` may
    ``studio.create``, ``ValidationError`` (see ``edit_request_clean``) and
    ``jobs.QuotaExceeded``; in each case nothing is stored or queued.
    """
    membership_require(actor=actor, action="studio.create", project=project)
    if source_asset is not None and source_asset.project_id != project.pk:
        raise ValueError("the source asset belongs to another project")
    request = edit_request_clean(request=request)
    if request.seed is None:
        request = replace(request, seed=secrets.randbelow(SEED_RANGE))
    params = _params(request)
    author = actor.user
    stem = f"studio/{project.pk}/edits/{uuid.uuid4().hex}"
    stored: list[str] = []
    try:
        stored.append(default_storage.save(f"{stem}-source.png", ContentFile(request.source)))
        if request.mask is not None:
            stored.append(default_storage.save(f"{stem}-mask.png", ContentFile(request.mask)))
        with transaction.atomic():
            jobs.job_quota_check(
                kind=IMAGE_JOB, limit=settings.MAX_QUEUED_IMAGE_JOBS, what="image jobs waiting", lock=author,
                author=author, status=JobStatus.QUEUED,
            )
            record = prompt_record_create(
                project=project, author=author, kind="image", text=request.prompt, params=params,
                model_name=request.model, source="api" if via else "web", source_label=via,
            )
            job = Job.objects.create(
                project=project, author=author, prompt_record=record, origin=JobOrigin.EDIT,
                source_asset=source_asset, params=params, model_name=request.model, task_id=str(uuid.uuid4()),
                steps_total=max(int(request.steps * request.strength), 1),
                edit_source=stored[0], edit_mask=stored[1] if len(stored) > 1 else "",
            )
            if template_use is not None:
                template_use_record(use=template_use, project=project, user=author, output_kind="job", output_id=job.pk)
            jobs.job_enqueue(kind=IMAGE_JOB, job_id=job.pk, task_id=job.task_id)
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    return job


def _params(request: EditRequest) -> dict[str, Any]:
    """The request's fields (files as hashes) and the size of the images it will make."""
    from PIL import Image

    from generation.image.edit_request import edit_result_size

    with Image.open(io.BytesIO(request.source)) as source:  # our own re-encoded PNG: the header only
        width, height = edit_result_size(request, *source.size)
    return {**request.to_dict(), "width": width, "height": height}


def edit_request_for_job(*, job: Job) -> EditRequest:
    """The engine request an edit job runs: its params with its stored files."""
    from generation.image import EditRequest

    params = {k: v for k, v in job.params.items() if k not in {"source_hash", "mask_hash", "width", "height"}}
    params["outpaint_sides"] = tuple(params.get("outpaint_sides") or ())
    with default_storage.open(job.edit_source.name, "rb") as fh:
        source = fh.read()
    mask = None
    if job.edit_mask:
        with default_storage.open(job.edit_mask.name, "rb") as fh:
            mask = fh.read()
    return EditRequest(source=source, mask=mask, **params)

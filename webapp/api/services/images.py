"""Image requests of the API: studio jobs, so the images land in the gallery with their lineage."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from webapp.api.models import ImageCall
from webapp.api.params import ImageSpec


def image_call_create(*, principal: Any, spec: ImageSpec) -> Any:
    """A studio job for the request, made as the key's user and named after the key; returns the job.

    Raises a 403 ``ApiError`` unless the user may generate. The studio's
    ``job_create`` records the prompt (marked as the API's) and enqueues the
    job on the ``image`` queue after commit.
    """
    from webapp.studio.services import job_create

    principal.require_generate()
    with transaction.atomic():
        job = job_create(project=principal.project, membership=principal.membership, request=spec.request,
                         via=principal.key.label)
        ImageCall.objects.create(key=principal.key, job=job)
    return job


def image_call_stop(*, job: Any, membership: Any) -> None:
    """Stop the job of a request whose client went away."""
    from webapp.studio.services import job_cancel

    job_cancel(job=job, membership=membership)


def image_job_state(*, job_id: int) -> dict[str, Any]:
    from webapp.studio.models import Job

    return dict(Job.objects.filter(pk=job_id).values("status", "reason").get())


def image_job_expire_unclaimed(*, job_id: int, waited: float) -> bool:
    """Fail the job if it is still queued (no worker took it in time); False when a worker has it.

    Through the lifecycle, so the studio's card hears of it too.
    """
    from webapp.core.jobs import job_expire
    from webapp.studio.services import IMAGE_JOB

    return job_expire(kind=IMAGE_JOB, job_id=job_id, waited=waited)


def image_job_assets(*, job_id: int, key_id: int, with_bytes: bool) -> list[dict[str, Any]]:
    """The job's images in batch order (with their PNG bytes, base64, when asked); counts them for the key."""
    import base64

    from webapp.api.services.keys import key_record_images
    from webapp.studio.models import Asset

    rows = []
    assets = list(Asset.objects.filter(job_id=job_id).order_by("batch_index"))
    for asset in assets:
        row: dict[str, Any] = {"id": asset.pk}
        if with_bytes:
            with asset.file.open("rb") as fh:
                row["b64_json"] = base64.b64encode(fh.read()).decode("ascii")
        rows.append(row)
    key_record_images(key_id=key_id, images=len(assets))
    return rows

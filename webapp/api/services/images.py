"""Image requests of the API: studio jobs, so the images land in the gallery with their lineage."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from webapp.api.models import ApiKey, ImageCall
from webapp.api.params import ImageSpec
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_require


def image_call_create(*, actor: Membership, key: ApiKey, spec: ImageSpec) -> Any:
    """A studio job for the request, made as the key's user and named after the key; returns the job.

    ``actor`` is the key's user's membership. Raises PermissionDenied (the
    API answers 403) unless it may ``api.generate``. The studio's
    ``job_create`` records the prompt (marked as the API's) and enqueues the
    job on the ``image`` queue after commit.
    """
    from webapp.studio.services import job_create

    membership_require(actor=actor, action="api.generate", project=key.project)
    with transaction.atomic():
        job = job_create(project=key.project, actor=actor, request=spec.request, via=key.label)
        ImageCall.objects.create(key=key, job=job)
    return job


def image_edit_call_create(*, actor: Membership, key: ApiKey, spec: Any) -> Any:
    """A studio edit job for an ``/v1/images/edits`` or ``/variations`` request; the twin of ``image_call_create``.

    The studio's ``edit_job_create`` checks the files (a ``generation.errors.ValidationError``
    names the field; nothing is stored or queued then).
    """
    from webapp.studio.services import edit_job_create

    membership_require(actor=actor, action="api.generate", project=key.project)
    with transaction.atomic():
        job = edit_job_create(project=key.project, actor=actor, request=spec.request, via=key.label)
        ImageCall.objects.create(key=key, job=job)
    return job


def image_call_stop(*, job: Any, reason: str = "The client went away.") -> None:
    """Stop the job of a request whose client went away, or whose access was revoked meanwhile.

    The request made the job, so stopping it needs no role: through the lifecycle, not the
    studio's ``job_cancel`` (which a user just made a viewer may no longer call).
    """
    from webapp.core import jobs
    from webapp.studio.services import IMAGE_JOB

    jobs.job_stop(kind=IMAGE_JOB, job=job, reason=reason)


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


def image_job_assets(*, job_id: int, key_id: int, with_bytes: bool, user: Any = None) -> list[dict[str, Any]]:
    """The job's images in batch order (with their PNG bytes, base64, when asked); counts them for the key.

    Bytes that leave in the answer are a download: the batch gets one audit entry.
    """
    import base64

    from webapp.api.services.keys import key_record_images
    from webapp.studio.models import Asset
    from webapp.studio.services import assets_record_download

    rows = []
    assets = list(Asset.objects.filter(job_id=job_id).select_related("project").order_by("batch_index"))
    for asset in assets:
        row: dict[str, Any] = {"id": asset.pk}
        if with_bytes:
            with asset.file.open("rb") as fh:
                row["b64_json"] = base64.b64encode(fh.read()).decode("ascii")
        rows.append(row)
    if with_bytes:
        assets_record_download(assets=assets, user=user, via="api b64_json")
    key_record_images(key_id=key_id, images=len(assets))
    return rows


def image_file_record(*, asset: Any, user: Any) -> None:
    """An image fetched through ``/v1/images/<id>/content``: a download, in the audit trail."""
    from webapp.studio.services import asset_record_download

    asset_record_download(asset=asset, user=user, via="api")

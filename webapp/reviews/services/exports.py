"""Export of an approved set: a zip of the approved images with their lineage and verdicts.

The web process records the export and enqueues it (queue ``default``); a
worker builds it. Images are copied one at a time from storage into a zip in
a temporary file, so memory holds one chunk of one image, never the set.
An export is a job of the one lifecycle (``webapp.core.jobs``): claimed,
kept alive by a heartbeat that also writes its progress, swept when its
worker dies, and ended done or failed there.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import tempfile
import uuid
import zipfile
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.core import bounds, jobs
from webapp.core.jobs import JobKind, JobStatus
from webapp.prompt_templates.selectors import template_uses_by_output
from webapp.reviews.models import (
    ApprovedExport,
    AssetKind,
    Decision,
    ReviewRequest,
    ReviewRound,
    ReviewState,
)
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_require

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "file", "asset_id", "review_id", "version", "model", "weights_hash", "scheduler", "steps", "guidance_scale",
    "seed", "width", "height", "template_version", "prompt", "negative_prompt", "author", "sha256",
    "approved_by", "approved_at",
]
COPY_CHUNK = 1 << 16

# The page polls the export's status, so the kind publishes nothing.
EXPORT_JOB = JobKind(name="reviews.export", model=ApprovedExport, task_name="reviews.build_approved_export", queue="default")


def export_create(*, actor: Membership, project: Any, review_round: ReviewRound | None = None) -> ApprovedExport:
    """Record an export of the project's approved images (or one round's) and enqueue it after commit.

    ``exports.create``: any member of the team, viewers included: it only packs what they can already download.
    Each member may start ``EXPORTS_PER_MEMBER_PER_HOUR`` exports of a project an hour, and the
    project may have ``MAX_LIVE_EXPORTS`` queued or building at once: past either,
    ``jobs.QuotaExceeded`` (a ValidationError) and nothing is written.
    """
    membership_require(actor=actor, action="exports.create", project=project)
    if review_round is not None and review_round.project_id != project.pk:
        raise ValidationError({"round": "That review round belongs to another project."})
    with transaction.atomic():
        # The project's row is locked first: two racing requests take turns (SQLite serialises anyway).
        jobs.job_quota_check(kind=EXPORT_JOB, limit=settings.MAX_LIVE_EXPORTS, lock=project, project=project,
                             what="exports of this project queued or being built")
        _export_rate_check(actor=actor, project=project)
        export = ApprovedExport.objects.create(project=project, round=review_round, requested_by=actor.user)
        jobs.job_enqueue(kind=EXPORT_JOB, job_id=export.pk)
    return export


def _export_rate_check(*, actor: Membership, project: Any) -> None:
    limit = int(settings.EXPORTS_PER_MEMBER_PER_HOUR)
    if limit <= 0:
        return
    since = timezone.now() - timedelta(hours=1)
    recent = ApprovedExport.objects.filter(project=project, requested_by=actor.user, created_at__gte=since).count()
    if recent >= limit:
        raise jobs.QuotaExceeded(
            f"You started {recent} exports of this project in the last hour; the limit is {limit}. "
            "Download one of them, or try again later."
        )


def exports_expire(*, now: Any = None) -> int:
    """Delete the zips of exports built more than ``EXPORT_TTL_DAYS`` ago and mark their rows expired.

    Celery beat runs it (task ``reviews.expire_exports``, on the ``maintenance``
    queue). The row stays, with its manifest counts, for the audit trail.
    Returns how many expired.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=float(settings.EXPORT_TTL_DAYS))
    expired = 0
    stale = ApprovedExport.objects.filter(expired_at__isnull=True, finished_at__lt=cutoff).exclude(file="")
    for export_id, name in list(stale.values_list("pk", "file")):
        if ApprovedExport.objects.filter(pk=export_id, expired_at__isnull=True).update(expired_at=now, file=""):
            try:
                default_storage.delete(name)
            except Exception:
                logger.exception("could not delete the zip of expired export %s", export_id)
            expired += 1
    return expired


def approved_reviews(*, project: Any, review_round: ReviewRound | None = None) -> list[ReviewRequest]:
    """The approved image reviews of the project (or of one round), oldest first."""
    reviews = ReviewRequest.objects.filter(project=project, asset_kind=AssetKind.IMAGE, state=ReviewState.APPROVED)
    if review_round is not None:
        reviews = reviews.filter(round=review_round)
    return list(reviews.order_by("created_at", "id"))


def manifest_entry(*, review: ReviewRequest, asset: Any, file_name: str, template_version: str = "") -> dict[str, Any]:
    """One file's lineage and approvals, as the manifests list them."""
    approvals = [
        {"by": v.reviewer.get_username() if v.reviewer else "(deleted)", "at": v.created_at.isoformat()}
        for v in review.verdicts.filter(is_current=True, decision=Decision.APPROVE).select_related("reviewer")
    ]
    params = asset.params
    return {
        "file": file_name, "asset_id": asset.pk, "review_id": review.pk, "version": review.version,
        "model": asset.model_name, "weights_hash": asset.model_revision, "scheduler": asset.scheduler,
        "steps": asset.steps, "guidance_scale": asset.guidance_scale, "seed": asset.seed,
        "width": asset.width, "height": asset.height,
        "template_version": template_version,
        "prompt": params.get("prompt", ""), "negative_prompt": params.get("negative_prompt") or "",
        "author": asset.author.get_username() if asset.author else "", "sha256": asset.sha256,
        "approvals": approvals,
    }


def _manifest_csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MANIFEST_COLUMNS)
    for entry in entries:
        approvals = entry["approvals"]
        row = {**entry, "approved_by": ";".join(a["by"] for a in approvals),
               "approved_at": ";".join(a["at"] for a in approvals)}
        writer.writerow([bounds.csv_cell(row[column]) for column in MANIFEST_COLUMNS])
    return out.getvalue()


def export_build(*, export_id: int, worker: str = "") -> ApprovedExport | None:
    """Build a queued export on this worker; None when it is not queued any more.

    Progress (files done of files total) is written after every file. The
    zip goes to the default storage under ``exports/<project>/``; if the job
    was stopped or swept meanwhile, the zip is deleted again.
    """
    if not jobs.job_claim(kind=EXPORT_JOB, job_id=export_id, worker=worker):
        return None
    export = ApprovedExport.objects.select_related("project", "round", "requested_by").get(pk=export_id)
    with jobs.job_running(kind=EXPORT_JOB, job=export):
        return _export_write(export)


def _export_write(export: ApprovedExport) -> ApprovedExport:
    from webapp.studio.models import Asset

    reviews = approved_reviews(project=export.project, review_round=export.round)
    assets = Asset.objects.select_related("author").in_bulk([r.asset_id for r in reviews])
    reviews = [r for r in reviews if r.asset_id in assets]
    uses = template_uses_by_output(output_kind="job", output_ids=[a.job_id for a in assets.values()],
                                   project=export.project)
    ApprovedExport.objects.filter(pk=export.pk).update(files_total=len(reviews))
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryFile(suffix=".zip") as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED) as archive:
            for done, review in enumerate(reviews, start=1):
                asset = assets[review.asset_id]
                name = f"images/v{review.version}-image{asset.pk}-seed{asset.seed}.png"
                with default_storage.open(asset.file.name, "rb") as source, archive.open(name, "w") as target:
                    shutil.copyfileobj(source, target, COPY_CHUNK)
                use = uses.get(asset.job_id)
                template = f"/{use.command} v{use.version_number}" if use is not None else ""
                entries.append(manifest_entry(review=review, asset=asset, file_name=name, template_version=template))
                ApprovedExport.objects.filter(pk=export.pk).update(files_done=done)
            manifest = {
                "project": {"id": export.project_id, "name": export.project.name},
                "round": export.round_id, "exported_at": timezone.now().isoformat(),
                "exported_by": export.requested_by.get_username() if export.requested_by else "",
                "files": entries,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
            archive.writestr("manifest.csv", _manifest_csv(entries))
        size = spool.tell()
        spool.seek(0)
        stored = default_storage.save(f"exports/{export.project_id}/{uuid.uuid4().hex}.zip", File(spool))
    with transaction.atomic():
        if not jobs.job_finish(kind=EXPORT_JOB, job_id=export.pk, status=JobStatus.DONE,
                               values={"file": stored, "byte_size": size}):
            transaction.on_commit(partial(default_storage.delete, stored))
            export.refresh_from_db()
            return export
        audit_record(
            actor=export.requested_by, team_id=export.project.team_id, project_id=export.project_id,
            action=AuditAction.EXPORTED, object_kind="export", object_id=export.pk,
            detail={"round": export.round_id, "files": len(entries), "assets": [e["asset_id"] for e in entries]},
        )
    export.refresh_from_db()
    return export


def export_fail(*, export_id: int, reason: str) -> bool:
    """Mark a queued or running export failed; False if it had already ended."""
    return jobs.job_fail(kind=EXPORT_JOB, job_id=export_id, reason=reason)


def export_record_download(*, actor: Any, export: ApprovedExport) -> None:
    audit_record(
        actor=actor, team_id=export.project.team_id, project_id=export.project_id, action=AuditAction.DOWNLOADED,
        object_kind="export", object_id=export.pk,
    )

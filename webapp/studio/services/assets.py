"""Writes about stored images that are not jobs."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studio.models import Asset


def asset_record_download(*, asset: Asset, user: Any, via: str = "download") -> None:
    """Add the download to the audit trail (the only write a download makes).

    ``via`` says how the bytes left: ``download`` (the attachment), ``view``
    (``image.png``, shown in a page), ``api`` (``/v1/images/<id>/content``).
    """
    audit_record(
        actor=user, team_id=asset.project.team_id, project_id=asset.project_id, action=AuditAction.DOWNLOADED,
        object_kind="image", object_id=asset.pk, detail={"via": via},
    )


def assets_record_download(*, assets: Sequence[Asset], user: Any, via: str) -> None:
    """One audit entry for a batch of one job's images that left together (an API ``b64_json`` answer)."""
    if not assets:
        return
    first = assets[0]
    audit_record(
        actor=user, team_id=first.project.team_id, project_id=first.project_id, action=AuditAction.DOWNLOADED,
        object_kind="job", object_id=first.job_id, detail={"via": via, "assets": [asset.pk for asset in assets]},
    )

"""Writes about stored images that are not jobs."""
from __future__ import annotations

from typing import Any

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studio.models import Asset


def asset_record_download(*, asset: Asset, user: Any) -> None:
    """Add the download to the audit trail (the only write a download makes)."""
    audit_record(
        actor=user, team_id=asset.project.team_id, project_id=asset.project_id, action=AuditAction.DOWNLOADED,
        object_kind="image", object_id=asset.pk,
    )

"""Reads of the audit trail: only a team's admins and owners see it."""
from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.db.models import QuerySet

from webapp.audit.models import AuditEntry
from webapp.core import bounds
from webapp.workspaces.permissions import membership_require


def audit_list(
    *,
    membership: Any,
    action: str = "",
    actor_id: int | None = None,
    project_id: int | None = None,
    object_kind: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEntry]:
    """The team's entries, newest first, narrowed by the filters. PermissionDenied unless the role may ``audit.read``."""
    membership_require(actor=membership, action="audit.read")
    entries = AuditEntry.objects.filter(team_id=membership.team_id)
    if action:
        entries = entries.filter(action=action)
    if actor_id:
        entries = entries.filter(actor_id=actor_id)
    if project_id:
        entries = entries.filter(project_id=project_id)
    if object_kind:
        entries = entries.filter(object_kind=object_kind)
    if date_from:
        entries = entries.filter(at__date__gte=date_from)
    if date_to:
        entries = entries.filter(at__date__lte=date_to)
    return entries.order_by("-at", "-id")


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = ["at", "actor", "action", "project_id", "object_kind", "object_id", "detail"]


def audit_csv_rows(*, entries: QuerySet[AuditEntry]) -> Iterator[str]:
    """CSV lines for ``entries``, one at a time (for a streaming response)."""
    import json

    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries.iterator(chunk_size=500):
        yield writer.writerow([bounds.csv_cell(cell) for cell in (
            entry.at.isoformat(), entry.actor_name, entry.action, entry.project_id or "", entry.object_kind,
            entry.object_id or "", json.dumps(entry.detail, sort_keys=True),
        )])

"""The one write of the audit trail. Other apps call ``audit_record``; nothing updates or deletes."""
from __future__ import annotations

from typing import Any

from webapp.audit.models import AuditEntry


def audit_record(
    *,
    actor: Any,
    team_id: int,
    action: str,
    project_id: int | None = None,
    object_kind: str = "",
    object_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. ``actor`` is a user or None (the system, e.g. a worker).

    Call it inside the transaction of the act it records, so the entry and
    the act commit (or roll back) together.
    """
    return AuditEntry.objects.create(
        actor_id=getattr(actor, "pk", None),
        actor_name=actor.get_username() if actor is not None else "",
        team_id=team_id,
        project_id=project_id,
        action=action,
        object_kind=object_kind,
        object_id=object_id,
        detail=detail or {},
    )

"""Reads of a project's activity: finished jobs (usage records), audit entries, thumbnails, merged by time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from webapp.audit.models import AuditAction, AuditEntry
from webapp.studio.models import Asset
from webapp.usage import selectors as usage
from webapp.usage.models import UsageRecord
from webapp.workspaces.models import Membership

# What the feed shows from the audit trail (every member sees these; the trail itself is for admins).
AUDIT_KINDS = {
    AuditAction.REVIEW_REQUESTED: "review requested",
    AuditAction.VERDICT: "review decided",
    AuditAction.EXPORTED: "export made",
    AuditAction.TEMPLATE_PUBLISHED: "template version published",
}
PAGE = 50


@dataclass(frozen=True)
class Item:
    """One line of the feed: a finished job (``record``) or an audit entry (``entry``)."""

    at: datetime
    record: UsageRecord | None = None
    entry: AuditEntry | None = None
    thumbnail_id: int | None = None  # an image job's first image

    @property
    def label(self) -> str:
        return AUDIT_KINDS.get(self.entry.action, self.entry.action) if self.entry else ""  # type: ignore[call-overload]


def activity_kinds() -> list[tuple[str, str]]:
    """The kind filter's choices: every registered kind of job (the lifecycle's registry: no query; reading the
    kinds a project's records hold cost a fifth of the page), then the audit kinds."""
    from webapp.core.jobs import job_kinds

    jobs = sorted(kind.name for kind in job_kinds())
    return [(kind, kind) for kind in jobs] + [(str(action), label) for action, label in AUDIT_KINDS.items()]


def activity_people(*, project: Any) -> list[tuple[int, str]]:
    """The person filter's choices: the team's members (the feed shows every member's work to every member)."""
    return list(Membership.objects.filter(team_id=project.team_id).order_by("id").values_list("user_id",
                                                                                              "user__username"))


def activity_page(*, project: Any, kind: str = "", user_id: int | None = None, before: datetime | None = None,
                  size: int = PAGE) -> tuple[list[Item], datetime | None]:
    """Up to ``size`` items of the project's activity, newest first, older than ``before``; and the time to
    ask for the next page from (None on the last page). Two indexed reads of at most ``size`` rows each
    (records by project and time, entries by time), merged, and one for the thumbnails."""
    records: list[UsageRecord] = []
    entries: list[AuditEntry] = []
    if kind not in AUDIT_KINDS:
        rows = usage.project_activity(project=project, kind=kind, user_id=user_id)
        if before is not None:
            rows = rows.filter(finished_at__lt=before)
        records = list(rows.order_by("-finished_at")[:size + 1])
    if not kind or kind in AUDIT_KINDS:
        found = AuditEntry.objects.filter(project_id=project.pk, action__in=[kind] if kind else list(AUDIT_KINDS))
        if user_id:
            found = found.filter(actor_id=user_id)
        if before is not None:
            found = found.filter(at__lt=before)
        # By time alone, as the pages go: a tie-break on id made PostgreSQL sort every matching entry
        # instead of walking the index on ``at`` backwards.
        entries = list(found.order_by("-at")[:size + 1])
    thumbs = dict(Asset.objects.filter(job_id__in=[r.job_id for r in records if r.kind.startswith("studio.") and r.images],
                                       batch_index=0, project=project).values_list("job_id", "pk"))
    items = [Item(at=r.finished_at, record=r, thumbnail_id=thumbs.get(r.job_id) if r.kind.startswith("studio.") else None)
             for r in records]
    items += [Item(at=e.at, entry=e) for e in entries]
    items.sort(key=lambda item: item.at, reverse=True)
    more = len(items) > size
    items = items[:size]
    return items, (items[-1].at if more and items else None)


def activity_by_day(*, items: list[Item], tz: ZoneInfo) -> list[tuple[date, list[Item]]]:
    """``items`` (already in order) grouped by their day, in ``tz``."""
    days: list[tuple[date, list[Item]]] = []
    for item in items:
        day = item.at.astimezone(tz).date()
        if not days or days[-1][0] != day:
            days.append((day, []))
        days[-1][1].append(item)
    return days


def activity_item_for_entry(*, project: Any, entry_id: int) -> Item | None:
    """One audit entry of the project that the feed shows, as a feed item (the live feed)."""
    entry = AuditEntry.objects.filter(pk=entry_id, project_id=project.pk, action__in=list(AUDIT_KINDS)).first()
    return Item(at=entry.at, entry=entry) if entry is not None else None


def activity_item_for_record(*, project: Any, record_id: int) -> Item | None:
    """One finished job of the project as a feed item (the live feed), with its thumbnail."""
    record = usage.project_activity(project=project).filter(pk=record_id).first()
    if record is None:
        return None
    thumb = None
    if record.kind.startswith("studio.") and record.images:
        thumb = Asset.objects.filter(job_id=record.job_id, project=project).order_by("batch_index").values_list(
            "pk", flat=True).first()
    return Item(at=record.finished_at, record=record, thumbnail_id=thumb)

"""Reads of the usage app: the team's month, the budgets that apply to a new job and their use, the Usage page."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from webapp.usage.models import Budget, BudgetNotice, Metric, TeamUsageSettings, UsageRecord
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_may

METRIC_SUMS = {
    Metric.TOKENS: F("prompt_tokens") + F("completion_tokens"),
    Metric.IMAGES: F("images"),
    Metric.COMPUTE: F("compute_seconds"),
}


def team_time_zone(*, team_id: int) -> ZoneInfo:
    """The team's time zone (UTC unless the team set one)."""
    name = TeamUsageSettings.objects.filter(team_id=team_id).values_list("time_zone", flat=True).first()
    return ZoneInfo(name or "UTC")


def month_bounds(*, tz: ZoneInfo, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of the month ``now`` falls in, in ``tz``, and the start of the next one (aware datetimes)."""
    local = (now or timezone.now()).astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, following


def budgets_applying(*, team_id: int, project_id: int | None, user_id: int | None) -> list[Budget]:
    """The team's own budget, the project's and the member's, those that exist (one query)."""
    scope = Q(project__isnull=True, user__isnull=True)
    if project_id is not None:
        scope |= Q(project_id=project_id)
    if user_id is not None:
        scope |= Q(user_id=user_id, project__isnull=True)
    return list(Budget.objects.filter(scope, team_id=team_id).select_related("project"))


def _scope_filter(budget: Budget) -> Q:
    if budget.project_id:
        return Q(project_id=budget.project_id)
    if budget.user_id:
        return Q(user_id=budget.user_id)
    return Q()


def budgets_use(*, budgets: list[Budget], since: datetime, until: datetime | None = None) -> dict[int, dict[str, float]]:
    """Each budget's use of each metric since ``since``, by budget id, in one query over the team's records."""
    if not budgets:
        return {}
    team_id = budgets[0].team_id
    rows = UsageRecord.objects.filter(team_id=team_id, finished_at__gte=since)
    if until is not None:
        rows = rows.filter(finished_at__lt=until)
    sums: dict[str, Any] = {}
    for budget in budgets:
        for metric, expression in METRIC_SUMS.items():
            sums[f"b{budget.pk}_{metric}"] = Coalesce(Sum(expression, filter=_scope_filter(budget)), 0,
                                                      output_field=UsageRecord._meta.get_field("compute_seconds"))
    totals = rows.aggregate(**sums)
    return {budget.pk: {str(metric): float(totals[f"b{budget.pk}_{metric}"]) for metric in METRIC_SUMS}
            for budget in budgets}


def budget_list(*, team_id: int) -> list[Budget]:
    """Every budget of the team: the team's first, then projects, then members."""
    return sorted(Budget.objects.filter(team_id=team_id).select_related("project", "user"),
                  key=lambda b: (b.scope != "team", b.scope != "project", b.pk))


# --- The Usage page ---------------------------------------------------------------------

GROUPS = {  # table name -> (the column it groups by, its label column)
    "member": ("user_id", "user__username"),
    "project": ("project_id", "project__name"),
    "model": ("model_name", "model_name"),
    "key": ("key_id", "key_name"),
    "interface": ("interface", "interface"),
}
FILTERS = {"member": "user_id", "project": "project_id", "model": "model_name", "key": "key_id",
           "interface": "interface"}


def _sums() -> dict[str, Any]:
    return {
        "jobs": Count("pk"),
        "tokens": Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0),
        "images": Coalesce(Sum("images"), 0),
        "compute_seconds": Coalesce(Sum("compute_seconds"), 0.0),
        "pixels": Coalesce(Sum("pixels"), 0),
        "bytes_stored": Coalesce(Sum("bytes_stored"), 0),
    }


@dataclass(frozen=True)
class UsageReport:
    """What the Usage page shows: the totals, one point a day (in the team's time zone), five tables."""

    days: int
    tz: ZoneInfo
    only_own: bool
    totals: dict[str, Any]
    per_day: list[dict[str, Any]]
    tables: dict[str, list[dict[str, Any]]]


def usage_records_for(*, membership: Any, days: int, filters: dict[str, Any] | None = None) -> tuple[Any, bool]:
    """The team's records of the last ``days`` days, narrowed by ``filters``; owners and admins see everyone's,
    other members only their own (``usage.read``). Returns the queryset and whether it is the member's own."""
    only_own = not membership_may(actor=membership, action="usage.read")
    rows = UsageRecord.objects.filter(team_id=membership.team_id,
                                      finished_at__gte=timezone.now() - timedelta(days=days))
    if only_own:
        rows = rows.filter(user_id=membership.user_id)
    for name, value in (filters or {}).items():
        if value not in (None, "") and name in FILTERS:
            rows = rows.filter(**{FILTERS[name]: value})
    return rows, only_own


def usage_report(*, membership: Any, days: int = 30, filters: dict[str, Any] | None = None) -> UsageReport:
    """The Usage page's figures in seven grouped queries (totals, per day, five tables)."""
    rows, only_own = usage_records_for(membership=membership, days=days, filters=filters)
    tz = team_time_zone(team_id=membership.team_id)
    totals = rows.aggregate(**_sums())
    by_day = {row["day"]: row for row in rows.annotate(day=TruncDate("finished_at", tzinfo=tz)).values("day")
              .annotate(**_sums()).order_by("day")}
    today = timezone.now().astimezone(tz).date()
    per_day = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        found = by_day.get(day) or {}
        per_day.append({"day": day, **{name: found.get(name, 0) for name in ("jobs", "tokens", "images",
                                                                             "compute_seconds")}})
    tables = {}
    for name, (column, label) in GROUPS.items():
        if only_own and name == "member":
            continue
        grouped = rows.values(column, label).annotate(**_sums()).order_by("-jobs", column)
        tables[name] = [{"id": row[column], "name": row[label], **{k: row[k] for k in _sums()}} for row in grouped]
    return UsageReport(days=days, tz=tz, only_own=only_own, totals=totals, per_day=per_day, tables=tables)


def usage_csv_rows(*, report: UsageReport) -> Iterator[list[Any]]:
    """The Usage page's tables as CSV rows: table, name, then the sums."""
    yield ["table", "name", "jobs", "tokens", "images", "compute_seconds", "pixels", "bytes_stored"]
    for name, rows in report.tables.items():
        for row in rows:
            label = row["name"] if row["name"] not in (None, "") else "(none)"
            yield [name, label, row["jobs"], row["tokens"], row["images"], round(float(row["compute_seconds"]), 3),
                   row["pixels"], row["bytes_stored"]]


def usage_member_choices(*, membership: Any) -> dict[str, list[tuple[Any, str]]]:
    """The filters' choices: members (for those who see everyone), projects, models and keys seen in records."""
    rows, only_own = usage_records_for(membership=membership, days=366)
    members = [] if only_own else [
        (m.user_id, m.user.username) for m in membership.team.memberships.select_related("user").order_by("id")]
    projects = [(p.pk, p.name) for p in membership.team.projects.order_by("name")]
    models = [(m, m) for m in rows.exclude(model_name="").values_list("model_name", flat=True).distinct()
              .order_by("model_name")]
    keys = [(k, n or f"key {k}") for k, n in rows.filter(key_id__isnull=False).values_list("key_id", "key_name")
            .distinct().order_by("key_id")]
    return {"member": members, "project": projects, "model": models, "key": keys}


def budgets_page(*, membership: Any) -> dict[str, Any]:
    """The budgets page: one row for the team, each project and each member, with this month's use."""
    team = membership.team
    budgets = {(b.project_id, b.user_id): b for b in Budget.objects.filter(team_id=team.pk)}
    tz = team_time_zone(team_id=team.pk)
    start, resets = month_bounds(tz=tz)
    use = budgets_use(budgets=list(budgets.values()), since=start)
    rows = [("team", "The whole team", budgets.get((None, None)))]
    rows += [(f"project:{p.pk}", f"Project {p.name}", budgets.get((p.pk, None))) for p in team.projects.order_by("name")]
    rows += [(f"member:{m.user_id}", f"Member {m.user.username}", budgets.get((None, m.user_id)))
             for m in team.memberships.select_related("user").order_by("id")]
    return {
        "rows": [{"scope": scope, "label": label, "budget": budget, "use": use.get(budget.pk, {}) if budget else {}}
                 for scope, label, budget in rows],
        "month_start": start, "resets": resets, "tz": tz,
    }


# --- Notices: the 80% banner and the admins' inbox ------------------------------------------


def _notices_this_month(notices: Any) -> list[BudgetNotice]:
    """Only the notices of each team's current month (in its time zone), the highest level per budget and metric."""
    zones: dict[int, datetime] = {}
    kept: dict[tuple[int, str], BudgetNotice] = {}
    for notice in notices.select_related("budget__team", "budget__project", "budget__user").order_by("-level", "-id"):
        team_id = notice.budget.team_id
        if team_id not in zones:
            zones[team_id] = month_bounds(tz=team_time_zone(team_id=team_id))[0]
        if notice.month == zones[team_id].date():
            kept.setdefault((notice.budget_id, notice.metric), notice)
    return list(kept.values())


def budget_notices_for_member(*, user: Any) -> list[BudgetNotice]:
    """This month's notices of the budgets that bind ``user``: their teams', their projects' and their own."""
    if user is None or not user.is_authenticated:
        return []
    since = (timezone.now() - timedelta(days=32)).date()
    team_ids = Membership.objects.filter(user=user).values("team_id")
    notices = BudgetNotice.objects.filter(month__gte=since, budget__team_id__in=team_ids).filter(
        Q(budget__user__isnull=True) | Q(budget__user=user))
    return _notices_this_month(notices)


def budget_notices_for_admins(*, user: Any) -> list[BudgetNotice]:
    """This month's notices of every budget in the teams where ``user`` may set budgets (owners, admins)."""
    if user is None or not user.is_authenticated:
        return []
    teams = [m.team_id for m in Membership.objects.filter(user=user) if membership_may(actor=m, action="usage.budgets")]
    if not teams:
        return []
    since = (timezone.now() - timedelta(days=32)).date()
    return _notices_this_month(BudgetNotice.objects.filter(month__gte=since, budget__team_id__in=teams))

"""Reads of the usage app: the team's month, the budgets that apply to a new job and their use, the Usage page."""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from webapp.core.sql import Precompiled, precompile
from webapp.usage.metering import datetime_from_db
from webapp.usage.models import (
    Budget,
    BudgetNotice,
    Metric,
    TeamUsageSettings,
    UsageDay,
    UsageMonth,
    UsageRecord,
)
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_may

# The time zone is read at every finish and budget check; a process keeps it this long. A change reaches the
# process that made it at once, the others within this (budget months move by the hour a year, at most).
TIME_ZONE_SECONDS = 60.0
_time_zones: dict[int, tuple[float, ZoneInfo]] = {}


def team_time_zone(*, team_id: int) -> ZoneInfo:
    """The team's time zone (UTC unless the team set one)."""
    cached = _time_zones.get(team_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    name = TeamUsageSettings.objects.filter(team_id=team_id).values_list("time_zone", flat=True).first()
    tz = ZoneInfo(name or "UTC")
    _time_zones[team_id] = (time.monotonic() + TIME_ZONE_SECONDS, tz)
    return tz


def team_time_zone_forget(*, team_id: int) -> None:
    """Drop this process's copy of the team's time zone (after a change)."""
    _time_zones.pop(team_id, None)


def month_bounds(*, tz: ZoneInfo, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of the month ``now`` falls in, in ``tz``, and the start of the next one (aware datetimes)."""
    local = (now or timezone.now()).astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, following


# The budget reads run at every accept and every job's end. They are written as SQL, with their columns from the
# models: the ORM's compiling of the same two queries cost more than running them (the check went from 2.0 ms
# to under 1 ms on PostgreSQL, the end's write lost about 0.4 ms on SQLite).
BUDGET_COLUMNS = ("id", "team_id", "project_id", "user_id", "tokens", "images", "compute_seconds")


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


@cache
def _budgets_applying_sql(vendor: str) -> str:
    columns = ", ".join(_q(column) for column in BUDGET_COLUMNS)
    project, user = _q("project_id"), _q("user_id")
    # Identifiers are the model's own, quoted; every value is a parameter.
    return (f"SELECT {columns} FROM {_q(Budget._meta.db_table)} WHERE {_q('team_id')} = %s AND "  # noqa: S608
            f"(({project} IS NULL AND {user} IS NULL) OR {project} = %s OR ({project} IS NULL AND {user} = %s))")


def budgets_applying_sql(*, team_id: int, project_id: int | None, user_id: int | None
                         ) -> tuple[str, list[Any]]:
    """The query behind :func:`budgets_applying` (its columns are ``BUDGET_COLUMNS``), for a caller that
    runs it inside a bigger statement (built once per database vendor)."""
    return _budgets_applying_sql(connection.vendor), [team_id, project_id, user_id]


def budgets_from_rows(rows: list[dict[str, Any]]) -> list[Budget]:
    """Budgets from rows of ``BUDGET_COLUMNS`` by name (``budget.project`` loads on first use)."""
    budgets = []
    for row in rows:
        budget = Budget(**{column: row[column] for column in BUDGET_COLUMNS})
        budget._state.adding, budget._state.db = False, connection.alias
        budgets.append(budget)
    return budgets


def budgets_applying(*, team_id: int, project_id: int | None, user_id: int | None) -> list[Budget]:
    """The team's own budget, the project's and the member's, those that exist (one query; ``budget.project``
    loads on first use)."""
    sql, params = budgets_applying_sql(team_id=team_id, project_id=project_id, user_id=user_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return budgets_from_rows([dict(zip(BUDGET_COLUMNS, row, strict=True)) for row in rows])


def budgets_use(*, budgets: list[Budget], month: date) -> dict[int, dict[str, float]]:
    """Each budget's use of each metric in ``month`` (its 1st, in the team's time zone), by budget id: one
    query over at most three ``UsageMonth`` rows."""
    if not budgets:
        return {}
    scopes = [b.scope_key for b in budgets]
    marks = ", ".join(["%s"] * len(scopes))
    sql = (f"SELECT {_q('scope')}, {_q('tokens')}, {_q('images')}, {_q('compute_seconds')} "  # noqa: S608
           f"FROM {_q(UsageMonth._meta.db_table)} WHERE {_q('team_id')} = %s AND {_q('month')} = %s "
           f"AND {_q('scope')} IN ({marks})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [budgets[0].team_id, connection.ops.adapt_datefield_value(month), *scopes])
        tallies = {scope: (tokens, images, compute) for scope, tokens, images, compute in cursor.fetchall()}
    use: dict[int, dict[str, float]] = {}
    for budget in budgets:
        tokens, images, compute = tallies.get(budget.scope_key, (0, 0, 0.0))
        use[budget.pk] = {Metric.TOKENS: float(tokens), Metric.IMAGES: float(images), Metric.COMPUTE: float(compute)}
    return use


def budget_list(*, team_id: int) -> list[Budget]:
    """Every budget of the team: the team's first, then projects, then members."""
    return sorted(Budget.objects.filter(team_id=team_id).select_related("project", "user"),
                  key=lambda b: (b.scope != "team", b.scope != "project", b.pk))


# --- The Usage page ---------------------------------------------------------------------

GROUPS = {  # table name -> the UsageDay column it groups by (and the one naming it, for keys)
    "member": ("user_ref", "user_ref"),
    "project": ("project_ref", "project_ref"),
    "model": ("model_name", "model_name"),
    "key": ("key_ref", "key_name"),
    "interface": ("interface", "interface"),
}
FILTERS = {"member": "user_ref", "project": "project_ref", "model": "model_name", "key": "key_ref",
           "interface": "interface"}


def _sums() -> dict[str, Any]:
    return {
        "jobs": Coalesce(Sum("jobs"), 0),
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


def usage_days_for(*, membership: Any, days: int, filters: dict[str, Any] | None = None) -> tuple[Any, bool, ZoneInfo]:
    """The team's daily sums of the last ``days`` days (today included, in the team's time zone), narrowed by
    ``filters``; owners and admins see everyone's, other members only their own (``usage.read``)."""
    only_own = not membership_may(actor=membership, action="usage.read")
    tz = team_time_zone(team_id=membership.team_id)
    today = timezone.now().astimezone(tz).date()
    rows = UsageDay.objects.filter(team_id=membership.team_id, day__gt=today - timedelta(days=days))
    if only_own:
        rows = rows.filter(user_ref=membership.user_id)
    for name, value in (filters or {}).items():
        if value not in (None, "") and name in FILTERS:
            rows = rows.filter(**{FILTERS[name]: value})
    return rows, only_own, tz


def usage_report(*, membership: Any, days: int = 30, filters: dict[str, Any] | None = None) -> UsageReport:
    """The Usage page's figures from the daily sums, in seven grouped queries (totals, per day, five tables)
    and two for the names of members and projects."""
    rows, only_own, tz = usage_days_for(membership=membership, days=days, filters=filters)
    totals = rows.aggregate(**_sums())
    by_day = {row["day"]: row for row in rows.values("day").annotate(**_sums()).order_by("day")}
    today = timezone.now().astimezone(tz).date()
    per_day = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        found = by_day.get(day) or {}
        per_day.append({"day": day, **{name: found.get(name, 0) for name in ("jobs", "tokens", "images",
                                                                             "compute_seconds")}})
    names = {
        "member": dict(Membership.objects.filter(team_id=membership.team_id).values_list("user_id", "user__username")),
        "project": dict(Project.objects.filter(team_id=membership.team_id).values_list("pk", "name")),
    }
    tables = {}
    for name, (column, label) in GROUPS.items():
        if only_own and name == "member":
            continue
        grouped = rows.values(column, label).annotate(**_sums()).order_by("-jobs", column)
        tables[name] = [{"id": row[column], "name": names[name].get(row[column], "") if name in names else row[label],
                         **{k: row[k] for k in _sums()}} for row in grouped]
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
    """The filters' choices: members (for those who see everyone), projects, models and keys seen this year."""
    rows, only_own, _tz = usage_days_for(membership=membership, days=366)
    members = [] if only_own else [
        (m.user_id, m.user.username) for m in membership.team.memberships.select_related("user").order_by("id")]
    projects = [(p.pk, p.name) for p in membership.team.projects.order_by("name")]
    models = [(m, m) for m in rows.exclude(model_name="").values_list("model_name", flat=True).distinct()
              .order_by("model_name")]
    keys = [(k, n or f"key {k}") for k, n in rows.exclude(key_ref=0).values_list("key_ref", "key_name")
            .distinct().order_by("key_ref")]
    return {"member": members, "project": projects, "model": models, "key": keys}


def budgets_page(*, membership: Any) -> dict[str, Any]:
    """The budgets page: one row for the team, each project and each member, with this month's use."""
    team = membership.team
    budgets = {(b.project_id, b.user_id): b for b in Budget.objects.filter(team_id=team.pk)}
    tz = team_time_zone(team_id=team.pk)
    start, resets = month_bounds(tz=tz)
    use = budgets_use(budgets=list(budgets.values()), month=start.date())
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


def _member_notices(*, user: Any, since: date) -> Any:
    team_ids = Membership.objects.filter(user=user).values("team_id")
    return BudgetNotice.objects.filter(month__gte=since, budget__team_id__in=team_ids).filter(
        Q(budget__user__isnull=True) | Q(budget__user=user))


_USER_MARK, _SINCE_MARK = 9_876_543_210_777, date(1901, 2, 3)


@cache
def _member_notices_exist() -> Precompiled:
    from django.contrib.auth import get_user_model

    found = _member_notices(user=get_user_model()(pk=_USER_MARK), since=_SINCE_MARK).order_by().values("pk")[:1]
    return precompile(found, user=_USER_MARK, since=_SINCE_MARK)


def budget_notices_for_member(*, user: Any) -> list[BudgetNotice]:
    """This month's notices of the budgets that bind ``user``: their teams', their projects' and their own.
    The banner asks on every page, and mostly there are none: a check compiled once per process says so
    before the query that reads them (compiling that one took longer than running it)."""
    if user is None or not user.is_authenticated:
        return []
    since = (timezone.now() - timedelta(days=32)).date()
    if not _member_notices_exist().rows(user=user.pk, since=since):
        return []
    return _notices_this_month(_member_notices(user=user, since=since))


def budget_notices_for_admins(*, user: Any) -> list[BudgetNotice]:
    """This month's notices of every budget in the teams where ``user`` may set budgets (owners, admins)."""
    if user is None or not user.is_authenticated:
        return []
    teams = [m.team_id for m in Membership.objects.filter(user=user) if membership_may(actor=m, action="usage.budgets")]
    if not teams:
        return []
    since = (timezone.now() - timedelta(days=32)).date()
    return _notices_this_month(BudgetNotice.objects.filter(month__gte=since, budget__team_id__in=teams))


# --- A project's activity (jobs) ------------------------------------------------------------


def project_activity(*, project: Any, kind: str = "", user_id: int | None = None) -> Any:
    """The project's finished jobs, newest first, as usage records (with their member's ``username``), narrowed by kind and
    person: a queryset for the caller to page. Reads only; the records hold what each job was and used."""
    # The member's name as ``username`` (None once the user is gone), not the user row: a page builds 50.
    rows = UsageRecord.objects.filter(project=project).annotate(username=F("user__username")).order_by(
        "-finished_at", "-id")
    if kind:
        rows = rows.filter(kind=kind)
    if user_id:
        rows = rows.filter(user_id=user_id)
    return rows


_PROJECT_MARK = 9_876_543_210_987  # stands for the project's id in the compiled query below


@cache
def _running_query(limit: int) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of :func:`project_running` with ``_PROJECT_MARK`` for the project: compiled once
    per process (the registry of kinds is fixed once apps are ready); compiling the ``UNION ALL`` of every
    kind's rows cost more than running it."""
    from django.db.models import F, IntegerField, Value
    from django.db.models.fields import CharField

    from webapp.core.jobs import LIVE_STATUSES, job_kinds
    from webapp.usage.metering import plan_for

    parts = []
    for kind in job_kinds():
        plan = plan_for(kind.model, kind.owner)
        path = plan.lookups.get("project_id")
        if not path:
            continue
        person = plan.lookups.get("user_id", "")
        parts.append(
            kind.rows().filter(status__in=LIVE_STATUSES, **{path: _PROJECT_MARK}).order_by()
            .annotate(live_kind=Value(kind.name, output_field=CharField()), live_id=F("pk"), live_status=F("status"),
                      live_since=F("created_at"),
                      live_user=F(person) if person else Value(None, output_field=IntegerField()))
            .values_list("live_kind", "live_id", "live_status", "live_since", "live_user")
        )
    if not parts:
        return None
    rows = parts[0].union(*parts[1:], all=True).order_by("live_since")[:limit] if len(parts) > 1 else \
        parts[0].order_by("live_since")[:limit]
    sql, params = rows.query.sql_with_params()
    return sql, tuple(params)


def project_running(*, project: Any, limit: int = 20, names: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """What runs or waits in the project now, of every registered kind of job (read through the lifecycle's
    registry and the same column conventions as the usage record): kind, id, status, person, since. One
    query for every kind (``UNION ALL``, compiled once), and one for the team's names unless ``names`` (user
    id: name) come."""
    compiled = _running_query(limit)
    if compiled is None:
        return []
    sql, params = compiled
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk if value == _PROJECT_MARK else value for value in params])
        rows = cursor.fetchall()
    if names is None:
        names = dict(Membership.objects.filter(team_id=project.team_id).values_list("user_id", "user__username"))
    return [{"kind": kind, "id": pk, "status": status, "since": datetime_from_db(since), "user_id": user_id,
             "user": names.get(user_id, "") if user_id is not None else ""}
            for kind, pk, status, since, user_id in rows]


def project_month_use(*, project: Any) -> dict[str, Any]:
    """The project's use this month (in the team's time zone) and its budget, if it has one."""
    tz = team_time_zone(team_id=project.team_id)
    start, resets = month_bounds(tz=tz)
    row = UsageMonth.objects.filter(team_id=project.team_id, month=start.date(), scope=f"project:{project.pk}").first()
    budget = Budget.objects.filter(project=project).first()
    return {"tokens": row.tokens if row else 0, "images": row.images if row else 0,
            "compute_seconds": row.compute_seconds if row else 0.0, "budget": budget, "resets": resets, "tz": tz}

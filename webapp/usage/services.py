"""Writes of the usage app: the record of a finished job, budgets and their admission check, notices."""
from __future__ import annotations

import logging
from datetime import datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from webapp.core.jobs import Admission, QuotaExceeded
from webapp.core.sql import prepared_cursor
from webapp.usage import selectors
from webapp.usage.events import activity_publish_after_commit
from webapp.usage.metering import job_read
from webapp.usage.models import (
    Budget,
    BudgetNotice,
    Interface,
    Metric,
    TeamUsageSettings,
    UsageDay,
    UsageMonth,
    UsageRecord,
)
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_require

logger = logging.getLogger(__name__)


def usage_record_create(*, kind: Any, job_id: int, status: str, measured: dict[str, Any] | None = None
                        ) -> UsageRecord | None:
    """Record what the job ``job_id`` of ``kind`` used as it ended with ``status``; None if the row is gone
    or names no team. Runs inside the transaction that ends the job (``job_finished``), in a savepoint
    of its own (reads included: a failed query aborts only the savepoint on PostgreSQL), so a failure
    here never undoes the end. One or two queries to read, three to write and one for the 80% check
    (on PostgreSQL: the writes and the check's read of the budgets in one prepared statement)."""
    if not connection.in_atomic_block:
        with transaction.atomic():
            return usage_record_create(kind=kind, job_id=job_id, status=status, measured=measured)
    # Not ``atomic()``: on success the savepoint is left for the job's commit to release with the
    # transaction (one round trip less at every job's end); on failure it is rolled back to, as atomic would.
    savepoint = transaction.savepoint()
    try:
        return _record_create(kind=kind, job_id=job_id, status=status, measured=measured)
    except Exception:
        transaction.savepoint_rollback(savepoint)
        raise


def _record_create(*, kind: Any, job_id: int, status: str, measured: dict[str, Any] | None) -> UsageRecord | None:
    reading = job_read(model=kind.model, job_id=job_id, owner=kind.owner, measured=measured)
    if reading is None or reading.team_id is None:
        logger.warning("no usage recorded for %s %s: no row or no team", kind.name, job_id)
        return None
    record = UsageRecord(
        team_id=reading.team_id, project_id=reading.project_id, user_id=reading.user_id,
        key_id=reading.key_id, key_name=reading.key_name,
        interface=Interface.API if reading.key_id else Interface.WEB,
        kind=kind.name, job_id=job_id, model_name=reading.model_name[:200], status=status,
        prompt_tokens=reading.prompt_tokens, completion_tokens=reading.completion_tokens,
        images=reading.images, steps=reading.steps, pixels=reading.pixels,
        compute_seconds=reading.compute_seconds, queue_seconds=reading.queue_seconds,
        bytes_stored=reading.bytes_stored, job_created_at=reading.job_created_at,
        finished_at=reading.finished_at or timezone.now(),
    )
    budgets = None
    if connection.vendor == "postgresql":
        totals, budgets = _record_insert_with_rollups(record)
    else:  # SQLite has no data-modifying WITH; its statements cost no round trip
        _record_insert(record)
        totals = usage_rollups_add(record=record)
    budget_notices_update(record=record, totals=totals, budgets=budgets)
    activity_publish_after_commit(project_id=record.project_id, record_id=record.pk)
    return record


@cache
def _record_insert_sql(vendor: str) -> tuple[str, tuple[Any, ...]]:
    fields = tuple(f for f in UsageRecord._meta.concrete_fields if not f.primary_key)
    table = connection.ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    pk = connection.ops.quote_name(UsageRecord._meta.pk.column)  # type: ignore[union-attr]
    # Identifiers are the model's own columns, quoted; every value is a parameter.
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {pk}", fields  # noqa: S608


def _record_params(record: UsageRecord, fields: tuple[Any, ...]) -> list[Any]:
    db = connections[connection.alias]  # the wrapper itself: each attribute read through the proxy costs
    return [field.get_db_prep_save(getattr(record, field.attname), db) for field in fields]


def _record_insert(record: UsageRecord) -> None:
    """Save a new ``record`` in one ``INSERT ... RETURNING`` (SQLite 3.35+, PostgreSQL): the ORM's ``create``
    spent longer building the statement than the database spent running it (measured: about 0.3 ms of the
    2.5 ms the end's write took on SQLite). No signal listens to this model's saves."""
    sql, fields = _record_insert_sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, _record_params(record, fields))
        record.pk = cursor.fetchone()[0]
    record._state.adding, record._state.db = False, connection.alias


@lru_cache(maxsize=64)
def _upsert_sql(model: Any, columns: tuple[str, ...], rows: int, *, keys: tuple[str, ...], add: tuple[str, ...],
                returning: tuple[str, ...] = (), vendor: str = "", source: str = "") -> str:
    """The ``INSERT ... ON CONFLICT DO UPDATE`` of ``rows`` rows of ``columns`` (built once per shape, and
    per ``vendor``), or of the rows of ``source`` (a ``SELECT``) when given."""
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = [connection.ops.quote_name(column) for column in columns]
    marks = source or "VALUES " + ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * rows)
    updates = ", ".join(f"{connection.ops.quote_name(c)} = {table}.{connection.ops.quote_name(c)} + "
                        f"excluded.{connection.ops.quote_name(c)}" for c in add)
    # Identifiers are this model's own columns, quoted; every value is a parameter.
    conflict = ", ".join(connection.ops.quote_name(k) for k in keys)
    sql = f"INSERT INTO {table} ({', '.join(quoted)}) {marks} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    if returning:
        sql += " RETURNING " + ", ".join(connection.ops.quote_name(c) for c in returning)
    return sql


def _upsert_add(model: Any, rows: list[dict[str, Any]], *, keys: list[str], add: list[str],
                returning: list[str] | None = None) -> list[tuple[Any, ...]]:
    """Insert ``rows`` into ``model``'s table, or where a row with the same ``keys`` exists add the ``add``
    columns to it: one ``INSERT ... ON CONFLICT DO UPDATE`` (SQLite 3.35+ and PostgreSQL), so racing
    finishes never lose a count. Returns the ``returning`` columns of the rows as they are now."""
    columns = tuple(rows[0])
    sql = _upsert_sql(model, columns, len(rows), keys=tuple(keys), add=tuple(add), returning=tuple(returning or ()),
                      vendor=connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [row[column] for row in rows for column in columns])
        return list(cursor.fetchall()) if returning else []


_MONTH_KEYS = ["team_id", "month", "scope"]
_MONTH_SUMS = ["tokens", "images", "compute_seconds"]


def _rollup_rows(record: UsageRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``record``'s row of daily sums and its rows of month totals (team, project, member), by its end in
    the team's time zone."""
    tz = selectors.team_time_zone(team_id=record.team_id)
    day = record.finished_at.astimezone(tz).date()
    day_row = {
        "team_id": record.team_id, "day": day.isoformat(), "project_ref": record.project_id or 0,
        "user_ref": record.user_id or 0, "key_ref": record.key_id or 0, "model_name": record.model_name,
        "interface": record.interface, "key_name": record.key_name, "jobs": 1,
        "prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens,
        "images": record.images, "pixels": record.pixels, "bytes_stored": record.bytes_stored,
        "compute_seconds": record.compute_seconds,
    }
    scopes = ["team"]
    if record.project_id:
        scopes.append(f"project:{record.project_id}")
    if record.user_id:
        scopes.append(f"member:{record.user_id}")
    month = day.replace(day=1).isoformat()
    month_rows = [{"team_id": record.team_id, "month": month, "scope": scope, "tokens": record.tokens,
                   "images": record.images, "compute_seconds": record.compute_seconds} for scope in scopes]
    return [day_row], month_rows


def _totals(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, float]]:
    return {scope: {"tokens": float(tokens), "images": float(images), "compute_seconds": float(compute)}
            for scope, tokens, images, compute in rows}


def usage_rollups_add(*, record: UsageRecord) -> dict[str, dict[str, float]]:
    """Add ``record`` to its team's daily sums (the Usage page) and to the month's totals of the team, the
    project and the member (the budget check), by its end in the team's time zone: two upserts. Returns
    the month's totals now, by scope (``team``, ``project:<id>``, ``member:<id>``)."""
    day_rows, month_rows = _rollup_rows(record)
    _upsert_add(UsageDay, day_rows, keys=_DAY_KEYS, add=_DAY_SUMS)
    return _totals(_upsert_add(UsageMonth, month_rows, keys=_MONTH_KEYS, add=_MONTH_SUMS,
                               returning=["scope", *_MONTH_SUMS]))


_MONTH_SCOPES_SQL = "SELECT %s, %s::date, scope, %s, %s, %s FROM unnest(%s::varchar[]) AS scopes(scope)"


@cache
def _record_with_rollups_sql(day_columns: tuple[str, ...]) -> str:
    """The statement of ``_record_insert_with_rollups`` (built once). The month rows come from one array of
    scopes, so the statement has the same shape whatever the record and fewer than 50 parameters (psycopg
    caches its parsing of a statement only below that)."""
    insert, _fields = _record_insert_sql(connection.vendor)
    day_sql = _upsert_sql(UsageDay, day_columns, 1, keys=tuple(_DAY_KEYS), add=tuple(_DAY_SUMS))
    month_sql = _upsert_sql(UsageMonth, tuple(_MONTH_KEYS + _MONTH_SUMS), 0, keys=tuple(_MONTH_KEYS),
                            add=tuple(_MONTH_SUMS), returning=("scope", *_MONTH_SUMS), source=_MONTH_SCOPES_SQL)
    budget_sql, _params = selectors.budgets_applying_sql(team_id=0, project_id=None, user_id=None)
    pk = connection.ops.quote_name(UsageRecord._meta.pk.column)  # type: ignore[union-attr]
    return (f"WITH rec AS ({insert}), day AS ({day_sql}), month AS ({month_sql}), bud AS ({budget_sql}) "  # noqa: S608
            "SELECT (SELECT " + pk + " FROM rec), (SELECT COALESCE(json_agg(month), '[]') FROM month), "
            "(SELECT COALESCE(json_agg(bud), '[]') FROM bud)")


def _record_insert_with_rollups(record: UsageRecord) -> tuple[dict[str, dict[str, float]], list[Budget]]:
    """PostgreSQL: the record's insert, both upserts and the read of the budgets the record counts against
    in one statement (data-modifying ``WITH``, each part run once and to completion), as ``_record_insert``,
    ``usage_rollups_add`` and ``selectors.budgets_applying`` would do them: the month's totals and the
    budgets. Each round trip to the server costs about 0.3-0.4 ms: this saves three of the end's seven.
    The statement is built once and kept prepared on the connection (``prepared_cursor``): planning it
    took longer than running it."""
    _insert, fields = _record_insert_sql(connection.vendor)
    day_rows, month_rows = _rollup_rows(record)
    day_columns = tuple(day_rows[0])
    month = month_rows[0]
    _budget_sql, budget_params = selectors.budgets_applying_sql(
        team_id=record.team_id, project_id=record.project_id, user_id=record.user_id)
    params = [*_record_params(record, fields), *(day_rows[0][c] for c in day_columns),
              month["team_id"], month["month"], *(month[name] for name in _MONTH_SUMS),
              [row["scope"] for row in month_rows], *budget_params]
    with prepared_cursor() as cursor:
        cursor.execute(_record_with_rollups_sql(day_columns), params)
        record_pk, months, budget_rows = cursor.fetchone()
    record.pk = record_pk
    record._state.adding, record._state.db = False, connection.alias
    totals = _totals([(row["scope"], *(row[name] for name in _MONTH_SUMS)) for row in months])
    return totals, selectors.budgets_from_rows(budget_rows)


def usage_record_on_finish(sender: Any = None, *, kind: Any, job_id: int, status: str,
                           measured: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The ``job_finished`` receiver (connected in ``UsageConfig.ready``)."""
    usage_record_create(kind=kind, job_id=job_id, status=status, measured=measured)


# --- Budgets ------------------------------------------------------------------------

# Which metrics a new job counts against, by the queue it runs on; compute seconds count everywhere.
QUEUE_METRICS = {"text": (Metric.TOKENS, Metric.COMPUTE), "image": (Metric.IMAGES, Metric.COMPUTE)}
NOTICE_LEVELS = (100, 80)
_METRICS = tuple(Metric.values)


class BudgetExceeded(QuotaExceeded):
    """A monthly budget is used up (or set to 0): no new job that counts it until ``resets_at``.

    A ``QuotaExceeded`` (so every form shows it), with code ``budget``; the API answers 429
    ``insufficient_quota``.
    """

    def __init__(self, message: str, *, metric: str, limit: int, resets_at: datetime) -> None:
        super().__init__(message)
        self.code = "budget"
        self.metric, self.limit, self.resets_at = metric, limit, resets_at


def _whose(budget: Budget, user_id: int | None) -> str:
    if budget.project_id:
        return f"The project \u201c{budget.project.name}\u201d has a monthly budget of"  # type: ignore[union-attr]
    if budget.user_id:
        return "Your monthly budget is" if budget.user_id == user_id else "This member's monthly budget is"
    return "The team's monthly budget is"


def _amount(value: float, metric: str) -> str:
    return f"{int(value):,} {Metric(metric).label}"


def budget_admit(admission: Admission) -> None:
    """The admission check for budgets (registered in ``UsageConfig.ready``): raise ``BudgetExceeded`` when
    a budget of the team, the project or the member is used up this month (in the team's time zone)
    for a metric the job counts. One query without budgets, three with."""
    project = admission.project
    budgets = selectors.budgets_applying(team_id=project.team_id, project_id=project.pk, user_id=admission.user_id)
    metrics = QUEUE_METRICS.get(admission.queue, (Metric.COMPUTE,))
    budgets = [b for b in budgets if any(b.limit(m) is not None for m in metrics)]
    if not budgets:
        return
    tz = selectors.team_time_zone(team_id=project.team_id)
    start, resets = selectors.month_bounds(tz=tz)
    use = selectors.budgets_use(budgets=budgets, month=start.date())
    for budget in budgets:
        for metric in metrics:
            limit = budget.limit(metric)
            if limit is None or use[budget.pk][metric] < limit:
                continue
            when = f"{resets:%-d %B %Y at %H:%M} ({tz.key})"
            if limit == 0:
                message = f"{_whose(budget, admission.user_id)} 0 {Metric(metric).label}: no new jobs that use them."
            else:
                message = (f"{_whose(budget, admission.user_id)} {_amount(limit, metric)}, and "
                           f"{_amount(use[budget.pk][metric], metric)} are used this month.")
            raise BudgetExceeded(f"{message} It resets on {when}.", metric=str(metric), limit=limit,
                                 resets_at=resets)


def _budget_value(field: str, raw: Any) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValidationError({field: f"{Metric(field).label.capitalize()}: enter a whole number, or leave it "
                                      "empty for no limit."}) from None
    if value < 0:
        raise ValidationError({field: f"{Metric(field).label.capitalize()}: a budget cannot be negative "
                                      "(0 blocks, empty is no limit)."})
    return value


def budget_set(*, actor: Membership, project: Project | None = None, user_id: int | None = None,
               tokens: Any = None, images: Any = None, compute_seconds: Any = None) -> Budget | None:
    """Set the monthly budget of the actor's team, or of one of its projects, or one of its members
    (``usage.budgets``: owners and admins). Each limit: empty for none, 0 to block, a whole number.
    Bad values raise ``ValidationError`` naming the field, and nothing is written. All three empty
    removes the budget (returns None). Jobs already running are never cut."""
    membership_require(actor=actor, action="usage.budgets", project=project)
    if project is not None and user_id is not None:
        raise ValidationError("A budget is for the team, a project or a member, not two at once.")
    if user_id is not None and not Membership.objects.filter(team_id=actor.team_id, user_id=user_id).exists():
        raise ValidationError({"member": "That person is not a member of this team."})
    raw = {"tokens": tokens, "images": images, "compute_seconds": compute_seconds}
    values, errors = {}, {}
    for field, value in raw.items():
        try:
            values[field] = _budget_value(field, value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if all(value is None for value in values.values()):
            Budget.objects.filter(team_id=actor.team_id, project=project, user=user_id).delete()
            return None
        budget, _created = Budget.objects.update_or_create(team_id=actor.team_id, project=project, user_id=user_id,
                                                           defaults=values)
    return budget


def team_time_zone_set(*, actor: Membership, time_zone: str) -> TeamUsageSettings:
    """The time zone the team's budget months begin in (``usage.budgets``); an unknown name is refused."""
    membership_require(actor=actor, action="usage.budgets")
    name = (time_zone or "").strip() or "UTC"
    if name not in available_timezones() and name != "UTC":
        raise ValidationError({"time_zone": f"Time zone: \u201c{name[:64]}\u201d is not a known time zone "
                                            "(e.g. Europe/Paris)."})
    ZoneInfo(name)
    settings_row, _created = TeamUsageSettings.objects.update_or_create(team_id=actor.team_id,
                                                                        defaults={"time_zone": name})
    selectors.team_time_zone_forget(team_id=actor.team_id)
    return settings_row


def budget_notices_update(*, record: UsageRecord, totals: dict[str, dict[str, float]] | None = None,
                          budgets: list[Budget] | None = None) -> list[BudgetNotice]:
    """After ``record``: a notice for each budget it belongs to that it took past 80% (or 100%) of a metric
    this month, once per level (the banner and the admins' inbox show them). ``totals``: the month's
    totals by scope after the record (``usage_rollups_add``); read when not given. ``budgets``: those
    ``selectors.budgets_applying`` gives for the record, when already read. One query without budgets,
    and one more only when a level is crossed."""
    if budgets is None:
        budgets = selectors.budgets_applying(team_id=record.team_id, project_id=record.project_id,
                                             user_id=record.user_id)
    budgets = [b for b in budgets if any(b.limit(m) for m in _METRICS)]
    if not budgets:
        return []
    if totals is None:
        tz = selectors.team_time_zone(team_id=record.team_id)
        start, _resets = selectors.month_bounds(tz=tz, now=record.finished_at)
        use = selectors.budgets_use(budgets=budgets, month=start.date())
    else:
        empty = dict.fromkeys(_METRICS, 0.0)
        use = {budget.pk: totals.get(budget.scope_key, empty) for budget in budgets}
    added = {"tokens": record.tokens, "images": record.images, "compute_seconds": record.compute_seconds}
    crossed = []
    for budget in budgets:
        for metric in _METRICS:
            limit = budget.limit(metric)
            if not limit:
                continue
            used = use[budget.pk][metric]
            before = used - added[metric]
            level = next((level for level in NOTICE_LEVELS if before * 100 < limit * level <= used * 100), None)
            if level is not None:  # else this record crossed no level (the one that did made the notice)
                crossed.append((budget, metric, level, used, limit))
    if not crossed:
        return []
    start, _resets = selectors.month_bounds(tz=selectors.team_time_zone(team_id=record.team_id),
                                            now=record.finished_at)
    made = []
    for budget, metric, level, used, limit in crossed:
        notice, created = BudgetNotice.objects.get_or_create(
            budget=budget, metric=metric, month=start.date(), level=level,
            defaults={"used": int(used), "limit": limit})
        if created:
            made.append(notice)
    return made


_DAY_KEYS = ["team_id", "day", "project_ref", "user_ref", "key_ref", "model_name", "interface"]
_DAY_SUMS = ["jobs", "prompt_tokens", "completion_tokens", "images", "pixels", "bytes_stored", "compute_seconds"]


def _rollups_of(records: Any, *, tz: ZoneInfo) -> tuple[dict[tuple[Any, ...], dict[str, Any]],
                                                        dict[tuple[Any, ...], dict[str, float]]]:
    """The daily sums and the month totals of ``records`` (rows as dicts), by their keys."""
    days: dict[tuple[Any, ...], dict[str, Any]] = {}
    months: dict[tuple[Any, ...], dict[str, float]] = {}
    for row in records:
        day = row["finished_at"].astimezone(tz).date()
        key = (day, row["project_id"] or 0, row["user_id"] or 0, row["key_id"] or 0, row["model_name"],
               row["interface"])
        sums = days.setdefault(key, {"jobs": 0, "prompt_tokens": 0, "completion_tokens": 0, "images": 0,
                                     "pixels": 0, "bytes_stored": 0, "compute_seconds": 0.0,
                                     "key_name": row["key_name"]})
        sums["jobs"] += 1
        for name in ("prompt_tokens", "completion_tokens", "images", "pixels", "bytes_stored", "compute_seconds"):
            sums[name] += row[name]
        scopes = ["team"] + ([f"project:{row['project_id']}"] if row["project_id"] else []) + (
            [f"member:{row['user_id']}"] if row["user_id"] else [])
        for scope in scopes:
            month = months.setdefault((day.replace(day=1), scope), {"tokens": 0, "images": 0, "compute_seconds": 0.0})
            month["tokens"] += row["prompt_tokens"] + row["completion_tokens"]
            month["images"] += row["images"]
            month["compute_seconds"] += row["compute_seconds"]
    return days, months


def usage_rollups_rebuild(*, team_id: int) -> int:
    """Recompute the team's daily sums and month totals from its records (after a bulk load or a change of
    time zone); returns how many records it read. Reads every record once, in Python."""
    tz = selectors.team_time_zone(team_id=team_id)
    rows = list(UsageRecord.objects.filter(team_id=team_id).values().iterator(chunk_size=5000))
    days, months = _rollups_of(rows, tz=tz)
    with transaction.atomic():
        UsageDay.objects.filter(team_id=team_id).delete()
        UsageMonth.objects.filter(team_id=team_id).delete()
        UsageDay.objects.bulk_create([
            UsageDay(team_id=team_id, day=k[0], project_ref=k[1], user_ref=k[2], key_ref=k[3], model_name=k[4],
                     interface=k[5], **v) for k, v in days.items()], batch_size=2000)
        UsageMonth.objects.bulk_create([UsageMonth(team_id=team_id, month=k[0], scope=k[1], **v)
                                        for k, v in months.items()], batch_size=2000)
    return len(rows)


def usage_rollups_add_project(*, project_id: int, batch: int = 500) -> int:
    """Add every record of the project to its team's daily sums and month totals (after an import brought
    the records in): upserts that add, so finishes racing with it lose nothing. Returns how many records."""
    rows = list(UsageRecord.objects.filter(project_id=project_id).values())
    if not rows:
        return 0
    team_id = rows[0]["team_id"]
    days, months = _rollups_of(rows, tz=selectors.team_time_zone(team_id=team_id))
    day_rows = [{"team_id": team_id, "day": connection.ops.adapt_datefield_value(k[0]), "project_ref": k[1],
                 "user_ref": k[2], "key_ref": k[3], "model_name": k[4], "interface": k[5], **v}
                for k, v in days.items()]
    month_rows = [{"team_id": team_id, "month": connection.ops.adapt_datefield_value(k[0]), "scope": k[1], **v}
                  for k, v in months.items()]
    with transaction.atomic():
        for start in range(0, len(day_rows), batch):
            _upsert_add(UsageDay, day_rows[start:start + batch], keys=_DAY_KEYS, add=_DAY_SUMS)
        for start in range(0, len(month_rows), batch):
            _upsert_add(UsageMonth, month_rows[start:start + batch], keys=["team_id", "month", "scope"],
                        add=["tokens", "images", "compute_seconds"])
    return len(rows)

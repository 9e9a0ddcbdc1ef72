"""Writes of the usage app: the record of a finished job, budgets and their admission check, notices."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from webapp.core.jobs import Admission, QuotaExceeded
from webapp.usage import selectors
from webapp.usage.metering import job_read
from webapp.usage.models import Budget, BudgetNotice, Interface, Metric, TeamUsageSettings, UsageRecord
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_require

logger = logging.getLogger(__name__)


def usage_record_create(*, kind: Any, job_id: int, status: str, measured: dict[str, Any] | None = None
                        ) -> UsageRecord | None:
    """Record what the job ``job_id`` of ``kind`` used as it ended with ``status``; None if the row is gone
    or names no team. Runs inside the transaction that ends the job (``job_finished``), in a savepoint
    of its own, so a failure here never undoes the end. Two queries to read, one to write."""
    reading = job_read(model=kind.model, job_id=job_id, owner=kind.owner, measured=measured)
    if reading is None or reading.team_id is None:
        logger.warning("no usage recorded for %s %s: no row or no team", kind.name, job_id)
        return None
    with transaction.atomic():
        record = UsageRecord.objects.create(
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
        budget_notices_update(record=record)
    return record


def usage_record_on_finish(sender: Any = None, *, kind: Any, job_id: int, status: str,
                           measured: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """The ``job_finished`` receiver (connected in ``UsageConfig.ready``)."""
    usage_record_create(kind=kind, job_id=job_id, status=status, measured=measured)


# --- Budgets ------------------------------------------------------------------------

# Which metrics a new job counts against, by the queue it runs on; compute seconds count everywhere.
QUEUE_METRICS = {"text": (Metric.TOKENS, Metric.COMPUTE), "image": (Metric.IMAGES, Metric.COMPUTE)}
NOTICE_LEVELS = (100, 80)


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
    use = selectors.budgets_use(budgets=budgets, since=start)
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
    return settings_row


def budget_notices_update(*, record: UsageRecord) -> list[BudgetNotice]:
    """After ``record``: a notice for each budget it belongs to that crossed 80% (or 100%) of a metric this
    month, once per level (the banner and the admins' inbox show them). One query without budgets."""
    budgets = selectors.budgets_applying(team_id=record.team_id, project_id=record.project_id,
                                         user_id=record.user_id)
    budgets = [b for b in budgets if any(b.limit(m) for m in Metric.values)]
    if not budgets:
        return []
    tz = selectors.team_time_zone(team_id=record.team_id)
    start, _resets = selectors.month_bounds(tz=tz, now=record.finished_at)
    use = selectors.budgets_use(budgets=budgets, since=start)
    made = []
    for budget in budgets:
        for metric in Metric.values:
            limit = budget.limit(metric)
            if not limit:
                continue
            used = use[budget.pk][metric]
            level = next((level for level in NOTICE_LEVELS if used * 100 >= limit * level), None)
            if level is None:
                continue
            notice, created = BudgetNotice.objects.get_or_create(
                budget=budget, metric=metric, month=start.date(), level=level,
                defaults={"used": int(used), "limit": limit})
            if created:
                made.append(notice)
    return made

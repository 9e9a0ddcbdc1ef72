"""Admission as an extension point: checks that apps above ``core`` register (budgets, for example).

``job_quota_check`` and ``job_quota_check_queue`` run them after their own quota, in the
transaction that creates the job, when the caller says who the job is for (``admit``). A
check raises (a ``ValidationError``, e.g. a ``QuotaExceeded``) to refuse; nothing is written then.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Admission:
    """Who a new job is for: the project (its team follows) and the user; ``adding`` jobs at once."""

    project: Any
    user_id: int | None
    adding: int = 1
    kind: str = ""  # filled in by the quota functions: the kind's name, or "" for a queue shared by kinds
    queue: str = ""


AdmissionCheck = Callable[[Admission], None]
_CHECKS: dict[str, AdmissionCheck] = {}


def admission_register(name: str, check: AdmissionCheck) -> None:
    """Register ``check`` under ``name`` (idempotent per name); call it from an ``AppConfig.ready``."""
    _CHECKS[name] = check


def admission_run(admission: Admission) -> None:
    """Run every registered check on ``admission``; the first that refuses raises."""
    for check in list(_CHECKS.values()):
        check(admission)

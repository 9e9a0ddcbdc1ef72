"""The usage write at a job's end through statements PostgreSQL keeps prepared (``webapp/core/sql.py``).

On SQLite (``make test``) the same writes run through Django's cursor; the checks of the prepared
statements themselves run under ``make test-scale`` (PostgreSQL).
"""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from webapp.core import jobs
from webapp.core.sql import prepared_cursor
from webapp.reviews.models import ApprovedExport
from webapp.reviews.services.exports import EXPORT_JOB
from webapp.usage.models import UsageMonth, UsageRecord

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def _finish(project, user) -> ApprovedExport:
    now = timezone.now()
    export = ApprovedExport.objects.create(project=project, requested_by=user, status="running", started_at=now,
                                           heartbeat_at=now)
    assert jobs.job_finish(kind=EXPORT_JOB, job_id=export.pk, status="done")
    return export


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_prepared_cursor_runs_its_statement_and_returns_rows(project):
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s + %s", [40, 2])
        assert cursor.fetchone()[0] == 42


def test_every_end_is_counted_once_in_the_record_and_the_month(project, bob):
    ends = [_finish(project, bob) for _ in range(3)]
    assert UsageRecord.objects.filter(kind=EXPORT_JOB.name, job_id__in=[e.pk for e in ends]).count() == 3
    months = dict(UsageMonth.objects.filter(team_id=project.team_id).values_list("scope", "tokens"))
    assert set(months) == {"team", f"project:{project.pk}", f"member:{bob.pk}"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="make test-scale: PostgreSQL's prepared statements")
def test_postgresql_keeps_the_write_and_the_job_read_prepared_and_recovers_after_a_rollback(project, bob):
    assert connection.connection is None or connection.connection.prepare_threshold is not None
    _finish(project, bob)
    _finish(project, bob)
    statements = _prepared_statements()
    assert any(s.startswith('WITH rec AS (INSERT INTO "usage_usagerecord"') for s in statements), statements
    assert any('FROM "reviews_approvedexport"' in s for s in statements), statements
    # A rolled-back savepoint makes psycopg forget (and deallocate) what it prepared: the next end prepares anew.
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        UsageRecord.objects.exists()
        raise ZeroDivisionError
    with transaction.atomic(), pytest.raises(ZeroDivisionError), transaction.atomic():
        UsageRecord.objects.exists()
        raise ZeroDivisionError
    later = _finish(project, bob)
    assert UsageRecord.objects.filter(kind=EXPORT_JOB.name, job_id=later.pk).exists()
    assert any(s.startswith('WITH rec AS (INSERT INTO "usage_usagerecord"') for s in _prepared_statements())

"""Queries compiled once and run with new values (webapp/core/sql.py), on SQLite and under test-scale PostgreSQL."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from webapp.core.sql import precompile
from webapp.usage.models import Budget, BudgetNotice
from webapp.workspaces.models import Project

pytestmark = pytest.mark.django_db

MARK = 9_876_543_210_999


def test_a_precompiled_query_runs_with_each_value_given_in_place_of_its_marker(project, team):
    other = Project.objects.create(team=team, name="Other")
    query = precompile(Project.objects.filter(pk=MARK).values_list("name"), project=MARK)
    assert query.rows(project=project.pk) == [(project.name,)]
    assert query.rows(project=other.pk) == [("Other",)]
    assert query.rows(project=0) == []


def test_a_date_marker_is_replaced_whatever_the_backend_makes_of_it(project, team):
    budget = Budget.objects.create(team=team, tokens=10)
    this_month = timezone.now().date().replace(day=1)
    BudgetNotice.objects.create(budget=budget, metric="tokens", month=this_month, level=80, used=8, limit=10)
    marker = date(1901, 2, 3)
    query = precompile(BudgetNotice.objects.filter(month__gte=marker, budget__team_id=MARK).values_list("level"),
                       since=marker, team=MARK)
    assert query.rows(since=this_month - timedelta(days=1), team=team.pk) == [(80,)]
    assert query.rows(since=this_month + timedelta(days=40), team=team.pk) == []


def test_a_marker_the_query_does_not_hold_is_refused():
    with pytest.raises(RuntimeError, match="no marker for \\['team'\\]"):
        precompile(Project.objects.filter(pk=MARK), project=MARK, team=MARK + 1)

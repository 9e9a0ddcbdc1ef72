"""The Usage page, its CSV and the budgets page: who sees what, and what a bad budget says."""
from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from webapp.usage import services
from webapp.usage.models import Budget, TeamUsageSettings, UsageRecord

pytestmark = pytest.mark.django_db

def _used(project, user, *, tokens=0, images=0, model="smollm2", key=None):
    record = UsageRecord.objects.create(
        team_id=project.team_id, project=project, user=user, kind="chat.reply", job_id=UsageRecord.objects.count() + 1,
        status="done", completion_tokens=tokens, images=images, compute_seconds=1.5, model_name=model,
        key_id=key, key_name="nb" if key else "", interface="api" if key else "web", finished_at=timezone.now())
    services.usage_rollups_add(record=record)  # as usage_record_create does
    return record


@pytest.mark.parametrize("name", ["usage:team_usage", "usage:team_usage_csv", "usage:team_budgets"])
def test_an_outsider_gets_404_on_every_usage_page(name, team, mallory, client_for):
    url = reverse(name, args=[team.pk])
    assert client_for(mallory).get(url).status_code == 404
    assert client_for(mallory).post(url, {"scope": "team", "tokens": "0"}).status_code in (404, 405)
    assert not Budget.objects.exists()


def test_a_viewer_cannot_set_a_budget_or_the_time_zone(team, carol, bob, client_for):
    url = reverse("usage:team_budgets", args=[team.pk])
    for user in (carol, bob):
        assert client_for(user).post(url, {"scope": "team", "tokens": "5"}).status_code == 403
        assert client_for(user).post(url, {"time_zone": "Europe/Paris"}).status_code == 403
    assert not Budget.objects.exists() and not TeamUsageSettings.objects.exists()


def test_an_owner_sets_budgets_and_a_bad_number_is_named(team, project, alice, bob, client_for):
    url = reverse("usage:team_budgets", args=[team.pk])
    assert client_for(alice).post(url, {"scope": f"member:{bob.pk}", "tokens": "1000", "images": "",
                                        "compute_seconds": "0"}).status_code == 302
    budget = Budget.objects.get()
    assert (budget.user_id, budget.tokens, budget.images, budget.compute_seconds) == (bob.pk, 1000, None, 0)
    response = client_for(alice).post(url, {"scope": f"project:{project.pk}", "tokens": "-3"})
    assert response.status_code == 400 and "Tokens: a budget cannot be negative" in response.content.decode()
    assert Budget.objects.count() == 1


def test_a_budget_for_another_team_project_is_404(team, other_project, alice, client_for):
    url = reverse("usage:team_budgets", args=[team.pk])
    assert client_for(alice).post(url, {"scope": f"project:{other_project.pk}", "tokens": "3"}).status_code == 404
    assert not Budget.objects.exists()


def test_a_member_sees_only_their_own_use_and_the_owner_everyone(team, project, alice, bob, client_for):
    _used(project, alice, tokens=700, model="alice-model")
    _used(project, bob, tokens=40, model="bob-model", key=9)
    url = reverse("usage:team_usage", args=[team.pk])
    mine = client_for(bob).get(url).content.decode()
    assert 'data-total="tokens">40<' in mine and "alice-model" not in mine and 'data-table="member"' not in mine
    everyone = client_for(alice).get(url).content.decode()
    assert 'data-total="tokens">740<' in everyone and "alice-model" in everyone and "bob-model" in everyone
    filtered = client_for(alice).get(url, {"interface": "api"}).content.decode()
    assert 'data-total="tokens">40<' in filtered


def test_the_csv_has_the_page_rows(team, project, alice, bob, client_for):
    _used(project, alice, tokens=7, images=2)
    response = client_for(alice).get(reverse("usage:team_usage_csv", args=[team.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["table", "name", "jobs", "tokens"]
    assert rows[1][:5] == ["member", "alice", "1", "7", "2"]


def test_the_chart_has_a_bar_a_day_and_a_text_alternative(team, project, alice, client_for):
    _used(project, alice, tokens=123)
    page = client_for(alice).get(reverse("usage:team_usage", args=[team.pk]), {"days": 90}).content.decode()
    assert page.count('<rect class="bar"') == 90 and 'data-value="123.0"' in page
    assert 'aria-labelledby="usage-chart-title usage-chart-desc"' in page and 'id="usage-chart-table"' in page


def test_at_eighty_percent_the_member_sees_a_banner_and_the_admins_their_inbox(team, project, alice, bob, carol,
                                                                               client_for):
    from tests.helpers import membership


    services.budget_set(actor=membership(alice, project), user_id=bob.pk, tokens=100)
    services.budget_notices_update(record=_used(project, bob, tokens=85))
    banner = client_for(bob).get(reverse("workspaces:team_detail", args=[team.pk])).content.decode()
    assert "usage-banner" in banner and "85 of 100 tokens used this month" in banner and "(80%)" in banner
    assert "usage-banner" not in client_for(carol).get(reverse("workspaces:team_detail", args=[team.pk])).content.decode()
    inbox = client_for(alice).get(reverse("reviews:inbox")).content.decode()
    assert 'id="budget-notices"' in inbox and "budget of bob" in inbox
    assert 'id="budget-notices"' not in client_for(bob).get(reverse("reviews:inbox")).content.decode()

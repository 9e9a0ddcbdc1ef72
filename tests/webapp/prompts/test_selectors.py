from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from webapp.prompts import selectors
from webapp.prompts.models import PromptRecord
from webapp.prompts.services import prompt_record_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(project, alice, bob):
    a = prompt_record_create(project=project, author=alice, kind="chat", text="Write a haiku about rain", params={"strategy": "greedy"})
    b = prompt_record_create(project=project, author=bob, kind="image", text="a red star", params={"steps": 20})
    c = prompt_record_create(project=project, author=bob, kind="chat", text="Summarise the rain report", params={})
    PromptRecord.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=3))
    return a, b, c


def test_history_is_newest_first(project, records):
    a, b, c = records
    assert list(selectors.prompt_history_list(project=project)) == [c, b, a]


def test_history_searches_text_case_insensitively(project, records):
    a, _, c = records
    assert set(selectors.prompt_history_list(project=project, query="RAIN")) == {a, c}


def test_history_filters_by_author_kind_and_date(project, records, bob):
    a, _b, c = records
    assert list(selectors.prompt_history_list(project=project, author_id=bob.pk, kind="chat")) == [c]
    today = timezone.now().date()
    assert a not in selectors.prompt_history_list(project=project, date_from=today)
    assert list(selectors.prompt_history_list(project=project, date_to=today - timedelta(days=1))) == [a]


def test_history_never_shows_another_projects_prompts(project, other_project, records, mallory):
    prompt_record_create(project=other_project, author=mallory, kind="chat", text="secret plan", params={})
    assert "secret plan" not in [r.text for r in selectors.prompt_history_list(project=project)]


def test_prompt_get_for_member_refuses_outsider(project, records, mallory):
    with pytest.raises(Http404):
        selectors.prompt_get_for_member(user=mallory, project_id=project.pk, prompt_id=records[0].pk)


def test_prompt_record_create_rejects_unknown_kind(project, alice):
    with pytest.raises(ValueError, match="kind"):
        prompt_record_create(project=project, author=alice, kind="audio", text="x", params={})

from __future__ import annotations

import pytest
from django.urls import reverse

from webapp.prompts.services import prompt_record_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(project, alice):
    return prompt_record_create(project=project, author=alice, kind="chat", text="Plan the launch party", params={})


@pytest.mark.parametrize("url_name", ["prompts:history", "prompts:reuse"])
def test_outsider_gets_404(url_name, client_for, project, record, mallory):
    kwargs = {"project_id": project.pk}
    if url_name == "prompts:reuse":
        kwargs["prompt_id"] = record.pk
    response = client_for(mallory).get(reverse(url_name, kwargs=kwargs))
    assert response.status_code == 404
    assert b"launch party" not in response.content


def test_viewer_reads_history_without_reuse(client_for, project, record, carol):
    response = client_for(carol).get(reverse("prompts:history", args=[project.pk]))
    assert b"Plan the launch party" in response.content
    assert b">Reuse<" not in response.content


def test_history_search_returns_a_partial_for_htmx(client_for, project, record, bob):
    prompt_record_create(project=project, author=bob, kind="image", text="a blue circle", params={})
    response = client_for(bob).get(reverse("prompts:history", args=[project.pk]), {"q": "circle"}, HTTP_HX_REQUEST="true")
    assert b"a blue circle" in response.content
    assert b"launch party" not in response.content
    assert b"<html" not in response.content


def test_history_date_range_error_is_shown_on_the_field(client_for, project, bob):
    response = client_for(bob).get(
        reverse("prompts:history", args=[project.pk]), {"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    assert "date_to" in response.context["form"].errors


def test_reuse_of_a_prompt_in_another_project_is_404(client_for, project, other_project, mallory, bob):
    foreign = prompt_record_create(project=other_project, author=mallory, kind="chat", text="x", params={})
    response = client_for(bob).get(reverse("prompts:reuse", args=[project.pk, foreign.pk]))
    assert response.status_code == 404

from __future__ import annotations

import json
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from tests.factories import ProjectFactory
from tests.webapp.prompt_templates.conftest import membership
from webapp.prompt_templates import selectors, services
from webapp.prompt_templates.variables import VariableValueError

pytestmark = pytest.mark.django_db


def test_outsider_cannot_get_a_template(chat_template, project, mallory):
    with pytest.raises(Http404):
        selectors.template_get_for_member(user=mallory, project_id=project.pk, template_id=chat_template.pk)


def test_a_template_is_not_reachable_through_another_teams_project(chat_template, other_project, mallory):
    with pytest.raises(Http404):
        selectors.template_get_for_member(user=mallory, project_id=other_project.pk, template_id=chat_template.pk)


def test_a_team_wide_template_shows_in_every_project_of_the_team_and_never_outside(
    chat_template, project, team, other_project, alice, bob
):
    sibling = ProjectFactory(team=team, name="Sibling")
    assert list(selectors.template_list_for_project(project=sibling)) == []
    services.template_save(actor=membership(alice, project), template=chat_template, body=chat_template.published_version.body,
                           settings=chat_template.published_version.settings, shared_with_team=True)
    assert list(selectors.template_list_for_project(project=sibling)) == [chat_template]
    assert selectors.template_get_for_member(user=bob, project_id=sibling.pk, template_id=chat_template.pk)
    assert list(selectors.template_list_for_project(project=other_project)) == []


def test_list_filters_by_kind_and_command_prefix(chat_template, image_template, project):
    assert list(selectors.template_list_for_project(project=project, kind="chat")) == [chat_template]
    assert list(selectors.template_list_for_project(project=project, query="/wat")) == [image_template]


def test_version_usage_counts(chat_template, project, alice, bob):
    v2 = services.template_save(actor=membership(alice, project), template=chat_template, body="v2 {{topic}}")
    for output_id in (1, 2):
        services.template_use_record(use=services.TemplateUseRequest(version=v2, values={}), project=project,
                                     user=bob, output_kind="reply", output_id=output_id)
    counts = {v.number: v.use_count for v in selectors.version_list_with_usage(template=chat_template)}
    assert counts == {2: 2, 1: 0}


def test_fill_renders_the_body_and_brings_the_pinned_settings(chat_template, project, bob):
    fill = selectors.version_fill(version=chat_template.published_version, values={"topic": "tea", "count": "3"},
                                  user=bob, project=project, today=date(2026, 1, 2))
    assert fill.fields == {"text": "Write 3 formal lines about tea.", "temperature": 0.5, "strategy": "sample"}
    assert json.loads(fill.template_use) == {"version": chat_template.published_version.pk,
                                             "values": {"count": "3", "tone": "", "topic": "tea"}}


def test_fill_of_an_image_template_puts_the_prompt_in_the_slot(image_template, project, bob):
    fill = selectors.version_fill(version=image_template.published_version, values={}, user=bob, project=project,
                                  prompt="a red circle")
    assert fill.fields["prompt"] == "a red circle, watercolour, calm"
    assert (fill.fields["steps"], fill.fields["width"]) == (4, 32)


def test_fill_refuses_values_that_dont_fit(chat_template, project, bob):
    with pytest.raises(VariableValueError) as exc:
        selectors.version_fill(version=chat_template.published_version, values={"count": "9"}, user=bob, project=project)
    assert set(exc.value.errors) == {"count", "topic"}


def test_template_use_request_parse_checks_the_version_belongs_to_the_project_and_kind(
    chat_template, image_template, project, other_project
):
    version = chat_template.published_version
    raw = json.dumps({"version": version.pk, "values": {"topic": "tea"}})
    use = selectors.template_use_request_parse(raw=raw, project=project, kind="chat")
    assert use.version == version and use.values == {"topic": "tea"}
    assert selectors.template_use_request_parse(raw="", project=project, kind="chat") is None
    for bad_raw, bad_project, kind in (
        (raw, other_project, "chat"),
        (raw, project, "image"),
        ("not json", project, "chat"),
        (json.dumps({"version": version.pk, "values": {"topic": 3}}), project, "chat"),
        (json.dumps({"version": version.pk, "values": {"not_a_variable": "x"}}), project, "chat"),
    ):
        with pytest.raises(ValidationError):
            selectors.template_use_request_parse(raw=bad_raw, project=bad_project, kind=kind)


def test_diff_pairs_lines_side_by_side_and_compares_settings(chat_template, project, alice):
    actor = membership(alice, project)
    services.template_save(actor=actor, template=chat_template, body="one\ntwo\nthree",
                           settings={"temperature": 0.5, "strategy": "sample"})
    services.template_save(actor=actor, template=chat_template, body="one\n2\nthree\nfour",
                           settings={"temperature": 0.9, "strategy": "sample"})
    left = selectors.version_get(template=chat_template, number=2)
    right = selectors.version_get(template=chat_template, number=3)
    diff = selectors.version_diff(left=left, right=right)
    assert [(r.tag, r.left, r.right) for r in diff.body] == [
        ("equal", "one", "one"), ("replace", "two", "2"), ("equal", "three", "three"), ("insert", None, "four")]
    assert [(r.key, r.left, r.right, r.changed) for r in diff.settings] == [
        ("strategy", "sample", "sample", False), ("temperature", 0.5, 0.9, True)]
    assert diff.changed and not selectors.version_diff(left=left, right=left).changed

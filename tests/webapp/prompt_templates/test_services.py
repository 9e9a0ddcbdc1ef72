from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.factories import ProjectFactory, membership_of
from tests.helpers import CHAT_BODY
from webapp.prompt_templates import selectors, services
from webapp.prompt_templates.models import PromptTemplate, TemplateVersion
from webapp.prompt_templates.uses import TemplateUseRequest
from webapp.prompts.services import prompt_record_create

pytestmark = pytest.mark.django_db


def _create(project, user, **overrides):
    values = {"name": "T", "command": "t", "kind": "chat", "body": "Hi {{name}}", "settings": {}}
    values.update(overrides)
    return services.template_create(actor=membership_of(user, project.team), project=project, **values)


def test_template_create_publishes_the_first_version(chat_template, alice):
    (version,) = chat_template.versions.all()
    assert chat_template.published_version == version
    assert (version.number, version.body, version.saved_by) == (1, CHAT_BODY, alice)
    assert version.settings == {"temperature": 0.5, "strategy": "sample"}


def test_template_create_rejects_a_viewer(project, carol):
    with pytest.raises(PermissionDenied):
        _create(project, carol)
    assert not PromptTemplate.objects.exists()


def test_template_create_rejects_a_membership_of_another_team(project, other_project, mallory):
    with pytest.raises(PermissionDenied):
        services.template_create(actor=membership_of(mallory, other_project.team), project=project, name="x", command="x",
                                 kind="chat", body="x")


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"body": "{{a|colour}}"}, "body", "line 1, column 1: a: unknown type"),
        ({"body": "x" * 20_001}, "body", "at most 20000"),
        ({"body": " ".join(f"{{{{v{i}}}}}" for i in range(51))}, "body", "at most 50 variables"),
        ({"body": "{{n|number:1..3|default:9}}"}, "body", "must be from 1 to 3"),
        ({"body": "{{t|select:a,b|default:c}}"}, "body", "not among the options"),
        ({"command": "Not OK"}, "command", "lowercase"),
        ({"name": ""}, "name", "name"),
        ({"settings": {"temperature": 5}}, "temperature", "[0, 2]"),
        ({"settings": {"model": "no-such-model"}}, "model", "no-such-model"),
        ({"settings": {"max_new_tokens": 0}}, "max_new_tokens", "integer"),
        ({"settings": {"colour": "red"}}, "colour", "cannot be pinned"),
        ({"kind": "image", "body": "{prompt}", "settings": {"steps": 999}}, "steps", "1 to 150"),
        ({"kind": "image", "body": "{prompt}", "settings": {"width": 33}}, "width", "multiple of 8"),
        ({"kind": "image", "body": "{prompt}", "settings": {"scheduler": "nope"}}, "scheduler", "must be one of"),
        ({"kind": "image", "body": "{prompt}", "settings": {"temperature": 1}}, "temperature", "cannot be pinned"),
    ],
)
def test_template_create_names_the_bad_field_and_writes_nothing(project, bob, overrides, field, words):
    with pytest.raises(ValidationError) as exc:
        _create(project, bob, **overrides)
    assert field in exc.value.error_dict
    assert words in " ".join(exc.value.error_dict[field][0].messages)
    assert not PromptTemplate.objects.exists() and not TemplateVersion.objects.exists()


def test_a_duplicate_command_is_refused_in_the_project(chat_template, project, bob):
    with pytest.raises(ValidationError) as exc:
        _create(project, bob, command="lines")
    assert "already taken" in exc.value.error_dict["command"][0].messages[0]


def test_the_same_command_is_fine_in_another_project_but_a_shared_one_is_taken_everywhere(
    chat_template, project, team, bob
):
    elsewhere = ProjectFactory(team=team, name="Elsewhere")
    _create(elsewhere, bob, command="lines")
    _create(elsewhere, bob, command="other", shared_with_team=True)
    with pytest.raises(ValidationError) as exc:
        _create(project, bob, command="other")
    assert "command" in exc.value.error_dict


def test_sharing_a_template_refuses_a_command_taken_in_another_project(chat_template, team, bob):
    elsewhere = ProjectFactory(team=team, name="Elsewhere")
    with pytest.raises(ValidationError) as exc:
        _create(elsewhere, bob, command="lines", shared_with_team=True)
    assert "command" in exc.value.error_dict


def test_template_save_makes_a_version_only_when_something_changed(chat_template, project, bob):
    actor = membership_of(bob, project.team)
    same = services.template_save(actor=actor, template=chat_template, body=CHAT_BODY,
                                  settings={"temperature": 0.5, "strategy": "sample"}, name="Renamed")
    assert same is None
    chat_template.refresh_from_db()
    assert chat_template.name == "Renamed" and chat_template.versions.count() == 1
    v2 = services.template_save(actor=actor, template=chat_template, body=CHAT_BODY + " Sign as {{user}}.",
                                settings={"temperature": 0.5, "strategy": "sample"}, note="sign it")
    assert (v2.number, v2.note, v2.saved_by) == (2, "sign it", bob)
    v3 = services.template_save(actor=actor, template=chat_template, body=v2.body, settings={"temperature": 0.9,
                                                                                           "strategy": "sample"})
    assert v3.number == 3
    chat_template.refresh_from_db()
    assert chat_template.published_version.number == 1, "saving does not publish"


def test_template_save_refuses_a_viewer_and_a_bad_body_without_changing_anything(chat_template, project, carol, bob):
    with pytest.raises(PermissionDenied):
        services.template_save(actor=membership_of(carol, project.team), template=chat_template, body="new")
    with pytest.raises(ValidationError) as exc:
        services.template_save(actor=membership_of(bob, project.team), template=chat_template, body="{{broken", name="New name")
    assert "never closed" in exc.value.error_dict["body"][0].messages[0]
    chat_template.refresh_from_db()
    assert chat_template.name == "Lines" and chat_template.versions.count() == 1


def test_publish_and_roll_back(chat_template, project, alice, carol):
    actor = membership_of(alice, project.team)
    v2 = services.template_save(actor=actor, template=chat_template, body="v2 {{topic}}")
    services.template_publish(actor=actor, version=v2)
    chat_template.refresh_from_db()
    assert chat_template.published_version == v2
    v1 = chat_template.versions.get(number=1)
    services.template_publish(actor=actor, version=v1)
    chat_template.refresh_from_db()
    assert chat_template.published_version == v1
    assert chat_template.versions.count() == 2, "rolling back adds no version"
    with pytest.raises(PermissionDenied):
        services.template_publish(actor=membership_of(carol, project.team), version=v2)


def test_delete_keeps_the_lineage_of_uses(chat_template, project, alice, carol):
    version = chat_template.published_version
    use = services.template_use_record(use=TemplateUseRequest(version=version, values={"topic": "x"}),
                                       project=project, user=alice, output_kind="reply", output_id=42)
    with pytest.raises(PermissionDenied):
        services.template_delete(actor=membership_of(carol, project.team), template=chat_template)
    services.template_delete(actor=membership_of(alice, project.team), template=chat_template)
    use.refresh_from_db()
    assert use.version is None and (use.command, use.version_number) == ("lines", 1)


def test_save_as_template_from_a_prompt_record(project, bob):
    record = prompt_record_create(project=project, author=bob, kind="image", text="a red circle",
                                  params={"prompt": "a red circle", "steps": 12, "seed": 5, "num_images": 1,
                                          "scheduler": "euler", "width": 32, "height": 32},
                                  model_name="atelier-shapes")
    template = services.template_create_from_prompt(actor=membership_of(bob, project.team), project=project, record=record,
                                                    name="Circle", command="circle")
    version = template.published_version
    assert template.kind == "image" and version.body == "a red circle"
    assert version.settings == {"steps": 12, "scheduler": "euler", "width": 32, "height": 32, "model": "atelier-shapes"}


def test_export_then_import_round_trip_with_every_version(chat_template, image_template, project, team, alice, bob):
    actor = membership_of(alice, project.team)
    v2 = services.template_save(actor=actor, template=chat_template, body="v2 {{topic}}", note="shorter")
    data = json.loads(json.dumps(selectors.templates_export(project=project)))
    target = ProjectFactory(team=team, name="Copy")
    plan = services.templates_import_plan(actor=membership_of(bob, target.team), project=target, data=data)
    assert (plan.create, plan.collide, plan.errors) == (("lines", "watercolour"), (), ())
    assert not PromptTemplate.objects.filter(project=target).exists(), "the plan writes nothing"
    services.templates_import(actor=membership_of(bob, target.team), project=target, data=data)
    copy = PromptTemplate.objects.get(project=target, command="lines")
    assert [(v.number, v.body, v.note) for v in copy.versions.order_by("number")] == [
        (1, CHAT_BODY, "First version"), (2, v2.body, "shorter")]
    assert copy.published_version.number == 1
    assert selectors.templates_export(project=target)["templates"][0]["versions"][0]["settings"] == {
        "temperature": 0.5, "strategy": "sample"}


def test_export_published_only_and_import_reports_collisions(chat_template, image_template, project, alice):
    services.template_save(actor=membership_of(alice, project.team), template=chat_template, body="v2 {{topic}}")
    data = selectors.templates_export(project=project, published_only=True)
    assert [len(t["versions"]) for t in data["templates"]] == [1, 1]
    data["templates"].append({**data["templates"][0], "command": "fresh"})
    plan = services.templates_import_plan(actor=membership_of(alice, project.team), project=project, data=data)
    assert plan.create == ("fresh",) and set(plan.collide) == {"lines", "watercolour"}
    created = services.templates_import(actor=membership_of(alice, project.team), project=project, data=data)
    assert [t.command for t in created] == ["fresh"]


def test_import_refuses_a_bad_file_and_a_bad_template_and_writes_nothing(project, alice):
    assert services.templates_import_plan(actor=membership_of(alice, project.team), project=project, data={"x": 1}).errors
    data = {"format": "atelier-templates", "templates": [
        {"name": "ok", "command": "ok", "kind": "chat", "versions": [{"body": "fine"}]},
        {"name": "bad", "command": "bad", "kind": "chat", "versions": [{"body": "{{x|colour}}"}]},
    ]}
    plan = services.templates_import_plan(actor=membership_of(alice, project.team), project=project, data=data)
    assert "unknown type" in plan.errors[0]
    with pytest.raises(ValidationError):
        services.templates_import(actor=membership_of(alice, project.team), project=project, data=data)
    assert not PromptTemplate.objects.exists()


def test_import_refuses_a_viewer(project, carol):
    with pytest.raises(PermissionDenied):
        services.templates_import(actor=membership_of(carol, project.team), project=project, data={})

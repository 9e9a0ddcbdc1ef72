from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.webapp.prompt_templates.conftest import membership
from webapp.prompt_templates import selectors, services
from webapp.prompt_templates.models import PromptTemplate, TemplateUse
from webapp.prompts.services import prompt_record_create

pytestmark = pytest.mark.django_db

TEMPLATE_URLS = ["prompt_templates:detail", "prompt_templates:edit", "prompt_templates:delete",
                 "prompt_templates:diff", "prompt_templates:use", "prompt_templates:render"]
VERSION_URLS = ["prompt_templates:version", "prompt_templates:publish"]
WRITES = ["prompt_templates:create", "prompt_templates:import", "prompt_templates:edit", "prompt_templates:delete",
          "prompt_templates:publish"]


def _url(name, project, template):
    kwargs = {"project_id": project.pk}
    if name in TEMPLATE_URLS or name in VERSION_URLS:
        kwargs["template_id"] = template.pk
    if name in VERSION_URLS:
        kwargs["number"] = 1
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize("url_name", [
    "prompt_templates:list", "prompt_templates:create", "prompt_templates:menu", "prompt_templates:export",
    "prompt_templates:import", "prompt_templates:detail", "prompt_templates:edit", "prompt_templates:delete",
    "prompt_templates:diff", "prompt_templates:use", "prompt_templates:render", "prompt_templates:version",
    "prompt_templates:publish",
])
@pytest.mark.parametrize("method", ["get", "post"])
def test_outsider_gets_404_on_every_template_url(url_name, method, client_for, project, chat_template, mallory):
    assert url_name.startswith("prompt_templates:")
    response = getattr(client_for(mallory), method)(_url(url_name, project, chat_template))
    assert response.status_code in (404, 405)
    if response.status_code == 405:  # the other method is tested in the same parametrization
        return
    assert b"Lines" not in response.content


@pytest.mark.parametrize("url_name", ["prompt_templates:detail", "prompt_templates:use", "prompt_templates:version"])
def test_outsider_gets_404_through_their_own_project(url_name, client_for, other_project, chat_template, mallory):
    response = client_for(mallory).get(_url(url_name, other_project, chat_template))
    assert response.status_code == 404


@pytest.mark.parametrize("url_name", WRITES)
def test_viewer_is_refused_every_write(url_name, client_for, project, chat_template, carol):
    response = client_for(carol).post(_url(url_name, project, chat_template), {"name": "x", "command": "x",
                                                                                "kind": "chat", "body": "x"})
    assert response.status_code == 403
    assert PromptTemplate.objects.count() == 1


def test_viewer_reads_the_list_and_detail_without_write_buttons(client_for, project, chat_template, carol):
    response = client_for(carol).get(reverse("prompt_templates:detail", args=[project.pk, chat_template.pk]))
    assert response.status_code == 200 and b"/lines" in response.content
    assert b">Edit<" not in response.content and b"Publish v" not in response.content
    listing = client_for(carol).get(reverse("prompt_templates:list", args=[project.pk]))
    assert b"/lines" in listing.content and b"New template" not in listing.content


def test_create_from_the_form_and_see_the_body_error_on_its_field(client_for, project, bob):
    url = reverse("prompt_templates:create", args=[project.pk])
    bad = client_for(bob).post(url, {"name": "Bad", "command": "bad", "kind": "chat", "body": "x {{oops|colour}}"})
    assert bad.status_code == 200
    assert "line 1, column 3" in bad.context["form"].errors["body"][0]
    bad_setting = client_for(bob).post(url, {"name": "Bad", "command": "bad", "kind": "image", "body": "{prompt}",
                                             "steps": "500"})
    assert "steps" in bad_setting.context["form"].errors
    response = client_for(bob).post(url, {"name": "Greet", "command": "greet", "kind": "chat",
                                          "body": "Hello {{name}}", "temperature": "0.3", "strategy": "sample"})
    template = PromptTemplate.objects.get(command="greet")
    assert response.status_code == 302 and response["Location"] == template.get_absolute_url()
    assert template.published_version.settings == {"temperature": 0.3, "strategy": "sample"}


def test_image_model_is_pinned_under_its_engine_name(client_for, project, bob):
    client_for(bob).post(reverse("prompt_templates:create", args=[project.pk]), {
        "name": "Img", "command": "img", "kind": "image", "body": "{prompt}", "image_model": "atelier-shapes"})
    assert PromptTemplate.objects.get(command="img").published_version.settings == {"model": "atelier-shapes"}


def test_edit_makes_v2_and_publish_rolls_back(client_for, project, chat_template, alice):
    client = client_for(alice)
    client.post(reverse("prompt_templates:edit", args=[project.pk, chat_template.pk]), {
        "name": "Lines", "command": "lines", "body": "Now {{topic}}", "note": "shorter", "temperature": "0.5",
        "strategy": "sample"})
    chat_template.refresh_from_db()
    assert chat_template.versions.count() == 2 and chat_template.published_version.number == 1
    client.post(reverse("prompt_templates:publish", args=[project.pk, chat_template.pk, 2]))
    chat_template.refresh_from_db()
    assert chat_template.published_version.number == 2
    client.post(reverse("prompt_templates:publish", args=[project.pk, chat_template.pk, 1]))
    chat_template.refresh_from_db()
    assert chat_template.published_version.number == 1
    page = client.get(reverse("prompt_templates:diff", args=[project.pk, chat_template.pk]), {"a": 1, "b": 2})
    assert b"Now {{topic}}" in page.content and b"diff-replace" in page.content


def test_the_variable_form_marks_required_fields_and_shows_defaults(client_for, project, chat_template, bob):
    response = client_for(bob).get(reverse("prompt_templates:use", args=[project.pk, chat_template.pk]),
                                   HTTP_HX_REQUEST="true")
    form = response.context["form"]
    assert form.fields["v-topic"].required and not form.fields["v-tone"].required
    assert form.fields["v-count"].initial == "2"
    assert [c[0] for c in form.fields["v-tone"].choices] == ["formal", "casual"]
    assert b'title="required"' in response.content and b"<html" not in response.content


def test_render_returns_the_fill_or_the_form_with_errors(client_for, project, chat_template, bob):
    url = reverse("prompt_templates:render", args=[project.pk, chat_template.pk])
    bad = client_for(bob).post(url, {"version": 1, "v-count": "9", "v-topic": "tea"}, HTTP_HX_REQUEST="true")
    assert "from 1 to 5" in bad.context["form"].errors["v-count"][0]
    good = client_for(bob).post(url, {"version": 1, "v-count": "3", "v-topic": "tea", "v-tone": "casual"})
    data = good.json()
    assert data["fields"]["text"] == "Write 3 casual lines about tea."
    assert json.loads(data["template_use"])["values"]["topic"] == "tea"


def test_menu_lists_published_templates_of_a_kind(client_for, project, chat_template, image_template, bob):
    response = client_for(bob).get(reverse("prompt_templates:menu", args=[project.pk]), {"kind": "chat", "q": "li"})
    assert b"/lines" in response.content and b"/watercolour" not in response.content


def test_export_and_import_through_the_pages(client_for, project, chat_template, alice):
    client = client_for(alice)
    exported = client.get(reverse("prompt_templates:export", args=[project.pk]))
    assert exported["Content-Disposition"].startswith("attachment")
    data = exported.json()
    data["templates"][0]["command"] = "lines-copy"
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("t.json", json.dumps(data).encode(), content_type="application/json")
    preview = client.post(reverse("prompt_templates:import", args=[project.pk]), {"file": upload})
    assert preview.context["plan"].create == ("lines-copy",)
    assert not PromptTemplate.objects.filter(command="lines-copy").exists()
    done = client.post(reverse("prompt_templates:import", args=[project.pk]),
                       {"payload": preview.context["payload"], "confirm": "1"})
    assert done.status_code == 302 and PromptTemplate.objects.filter(command="lines-copy").exists()


def test_save_as_template_prefills_from_the_history(client_for, project, bob):
    record = prompt_record_create(project=project, author=bob, kind="chat", text="Summarize {{doc|textarea}}",
                                  params={"system": "Be brief", "temperature": 0.2}, model_name="")
    response = client_for(bob).get(reverse("prompt_templates:create", args=[project.pk]), {"from_prompt": record.pk})
    initial = response.context["form"].initial
    assert (initial["body"], initial["system"], initial["temperature"]) == ("Summarize {{doc|textarea}}", "Be brief", 0.2)
    history = client_for(bob).get(reverse("prompts:history", args=[project.pk]))
    assert f"from_prompt={record.pk}".encode() in history.content


def test_chat_reply_from_a_template_records_the_version_and_values(client_for, project, chat_template, bob, monkeypatch):
    from webapp.core import jobs

    monkeypatch.setattr(jobs, "task_send", lambda *a, **k: None)
    version = chat_template.published_version
    use = json.dumps({"version": version.pk, "values": {"topic": "tea", "count": "2", "tone": ""}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("webapp.core.events.get_publisher", lambda: type("P", (), {"publish": lambda *a: None})())
        response = client_for(bob).post(reverse("chat:index", args=[project.pk]), {
            "text": "Write 2 formal lines about tea.", "template_use": use, "model": "", **_chat_settings()})
    assert response.status_code == 302, response.context["composer"].errors if response.context else ""
    recorded = TemplateUse.objects.get()
    assert (recorded.version, recorded.output_kind, recorded.values["topic"]) == (version, "reply", "tea")
    page = client_for(bob).get(response["Location"])
    link = reverse("prompt_templates:version", args=[project.pk, chat_template.pk, 1])
    assert link.encode() in page.content and b"topic=" in page.content
    detail = client_for(bob).get(chat_template.get_absolute_url())
    assert b'class="use-count">1<' in detail.content


def test_a_forged_template_use_is_refused_and_nothing_is_sent(client_for, project, other_project, mallory, bob):
    foreign = services.template_create(actor=membership(mallory, other_project), project=other_project, name="x",
                                       command="x", kind="chat", body="x")
    use = json.dumps({"version": foreign.published_version.pk, "values": {}})
    response = client_for(bob).post(reverse("chat:index", args=[project.pk]), {
        "text": "hi", "template_use": use, **_chat_settings()})
    assert response.status_code == 200 and "Template:" in str(response.context["composer"].non_field_errors())
    assert not TemplateUse.objects.exists()
    from webapp.chat.models import Message

    assert not Message.objects.exists()


def test_studio_job_from_a_template_shows_the_version_on_the_asset_lineage(
    client_for, project, image_template, bob, monkeypatch
):
    from tests.webapp.studio.conftest import fake_result
    from webapp.core import jobs
    from webapp.studio import services as studio_services
    from webapp.studio.models import Job

    monkeypatch.setattr(jobs, "task_send", lambda *a, **k: None)
    version = image_template.published_version
    use = json.dumps({"version": version.pk, "values": {"mood": "wild", "prompt": "a red circle"}})
    response = client_for(bob).post(reverse("studio:index", args=[project.pk]), {
        "prompt": "a red circle, watercolour, wild", "model": "atelier-shapes", "scheduler": "euler", "steps": 4,
        "guidance_scale": 1.0, "width": 32, "height": 32, "num_images": 1, "seed": 3, "template_use": use})
    assert response.status_code == 302
    job = Job.objects.get()
    started = studio_services.job_start(job_id=job.pk, worker="w1")
    studio_services.job_complete(job=started, result=fake_result(started))
    asset = job.assets.get()
    page = client_for(bob).get(asset.get_absolute_url())
    link = reverse("prompt_templates:version", args=[project.pk, image_template.pk, 1])
    assert link.encode() in page.content and "mood=“wild”".encode() in page.content
    made = selectors.version_outputs(version=version, project=project)
    thumb = reverse("studio:asset_thumbnail", args=[project.pk, asset.pk])
    assert made[0].output.thumbnails == (thumb,)


def _chat_settings():
    from webapp.chat.forms import settings_initial
    from webapp.chat.params import ReplySettings, default_model_name, default_params

    initial = settings_initial(ReplySettings(model_name=default_model_name(), params=default_params()))
    return {key: ("" if value is None else value) for key, value in initial.items()}


def test_a_team_wide_template_is_offered_in_a_sibling_project_and_not_to_another_team(
    client_for, project, team, chat_template, alice, bob, mallory, other_project
):
    from tests.factories import ProjectFactory

    sibling = ProjectFactory(team=team, name="Sibling")
    menu = reverse("prompt_templates:menu", args=[sibling.pk])
    assert b"/lines" not in client_for(bob).get(menu, {"kind": "chat"}).content
    services.template_save(actor=membership(alice, project), template=chat_template,
                           body=chat_template.published_version.body,
                           settings=chat_template.published_version.settings, shared_with_team=True)
    assert b"/lines" in client_for(bob).get(menu, {"kind": "chat"}).content
    detail = client_for(bob).get(reverse("prompt_templates:detail", args=[sibling.pk, chat_template.pk]))
    assert detail.status_code == 200 and b"Shared team-wide from Launch" in detail.content
    foreign_menu = client_for(mallory).get(reverse("prompt_templates:menu", args=[other_project.pk]), {"kind": "chat"})
    assert b"/lines" not in foreign_menu.content

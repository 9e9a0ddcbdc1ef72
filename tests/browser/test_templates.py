"""Prompt templates in a real browser: daphne, a real worker with the default models, chromium.

alice writes a chat template with typed variables; bob types "/" in the composer,
picks it, fills its form and sends; alice makes v2, publishes it and rolls back;
an image template makes an image whose lineage links to the exact version.
"""
from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from webapp.chat.models import Message
from webapp.prompt_templates import services
from webapp.prompt_templates.models import PromptTemplate, TemplateUse
from webapp.workspaces.models import Membership

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

BODY = "Write {{count|number:1..5|default:2}} {{tone|select:formal,casual|default:formal}} lines about {{topic}}."


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _shot(page, name: str) -> None:
    if os.environ.get("ATELIER_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["ATELIER_SCREENSHOTS"], name))


def test_chat_and_image_templates_from_creation_to_lineage(asgi_server, celery_worker, new_page, project, alice, bob):
    # alice writes a chat template with two typed variables (and a plain one), pinning short replies.
    author = new_page()
    _log_in(author, asgi_server, "alice")
    author.goto(f"{asgi_server}/projects/{project.pk}/")
    author.get_by_role("link", name="Templates").click()
    author.get_by_role("link", name="New template").click()
    author.get_by_label("Name").fill("Tea lines")
    author.get_by_label("Command").fill("tea")
    author.get_by_label("Body").fill(BODY)
    author.get_by_label("Max new tokens").fill("24")
    author.get_by_role("button", name="Create template").click()
    expect(author.locator(".page-head h2").first).to_contain_text("/tea")
    template = PromptTemplate.objects.get(command="tea")
    assert template.published_version.settings == {"max_new_tokens": 24}
    services.template_create(actor=Membership.objects.get(user=alice, team=project.team), project=project,
                             name="Teapot", command="teapot", kind="chat", body="Describe a teapot.")

    # bob types "/" in the composer, picks the template with the keyboard and fills its form.
    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}/projects/{project.pk}/chat/")
    box = page.get_by_label("Message")
    box.press_sequentially("/te")
    option = page.locator(".template-option[data-command=tea]")
    other = page.locator(".template-option[data-command=teapot]")
    expect(other).to_be_visible()
    expect(option).to_have_class(re.compile("active"))
    box.press("ArrowDown")
    expect(other).to_have_class(re.compile("active"))
    expect(option).not_to_have_class(re.compile("active"))
    box.press("ArrowUp")
    expect(option).to_have_class(re.compile("active"))
    box.press("Enter")
    form = page.locator(".template-use-form")
    expect(form).to_be_visible()
    expect(form.locator("label", has_text="Topic")).to_contain_text("*")  # required is marked
    expect(form.get_by_label("Count")).to_have_value("2")
    form.get_by_label("Topic").fill("the sea")
    form.get_by_label("Tone").select_option("casual")
    form.get_by_label("Count").fill("3")
    _shot(page, "templates.png")
    form.get_by_role("button", name="Use template").click()
    expect(box).to_have_value("Write 3 casual lines about the sea.")
    assert page.locator("#composer [name=max_new_tokens]").input_value() == "24"
    box.press("Enter")

    # The reply streams, and it records the version and the values.
    page.wait_for_url(re.compile(r"/chat/\d+/"))
    reply = Message.objects.filter(role="assistant").latest("id")
    page.locator(f"#msg-{reply.pk}.status-done").wait_for(timeout=120_000)
    reply.refresh_from_db()
    assert reply.text.strip() and reply.params["max_new_tokens"] == 24
    use = TemplateUse.objects.get(output_kind="reply", output_id=reply.pk)
    assert use.version == template.published_version
    assert use.values == {"count": "3", "tone": "casual", "topic": "the sea"}
    expect(page.locator(f"#msg-{reply.pk} .template-lineage a")).to_have_text("/tea v1")

    # alice edits (v2), publishes v2, then rolls back to v1.
    author.goto(f"{asgi_server}{template.get_absolute_url()}")
    expect(author.locator("tr#v1 .use-count")).to_have_text("1")
    author.get_by_role("link", name="Edit").click()
    author.get_by_label("Body").fill(BODY + " Sign it as {{user}}.")
    author.get_by_label("What changed").fill("Signed")
    author.get_by_role("button", name="Save").click()
    expect(author.locator("tr#v2")).to_contain_text("Signed")
    author.get_by_role("button", name="Publish v2").click()
    expect(author.locator("tr#v2")).to_contain_text("published")
    template.refresh_from_db()
    assert template.published_version.number == 2
    author.get_by_role("button", name="Publish v1").click()
    expect(author.locator("tr#v1")).to_contain_text("published")
    template.refresh_from_db()
    assert template.published_version.number == 1
    author.get_by_role("button", name="Show differences").click()
    expect(author.locator("table.diff").first).to_contain_text("Sign it as {{user}}.")

    # An image template fills the studio form; its image's lineage links to the exact version.
    author.goto(f"{asgi_server}/projects/{project.pk}/templates/new/")
    author.get_by_label("Name").fill("Shapes")
    author.get_by_label("Command").fill("shapes")
    author.get_by_label("Kind").select_option("image")
    author.get_by_label("Body").fill("{prompt} on a {{background|select:blue,white|default:blue}} background")
    author.get_by_label("Steps").fill("8")
    author.get_by_label("Width").fill("32")
    author.get_by_label("Height").fill("32")
    author.get_by_role("button", name="Create template").click()
    image_template = PromptTemplate.objects.get(command="shapes")

    page.goto(f"{asgi_server}/projects/{project.pk}/studio/")
    page.get_by_role("button", name="Use a template").click()
    page.locator(".template-option", has_text="/shapes").click()
    studio_form = page.locator(".template-use-form")
    studio_form.get_by_label("Your prompt").fill("a red circle")
    studio_form.get_by_role("button", name="Use template").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red circle on a blue background")
    expect(page.get_by_label("Steps")).to_have_value("8")
    page.get_by_role("button", name="Generate").click()
    card = page.locator(".job-card").first
    expect(card.get_by_alt_text(re.compile(r"Image 1 of job \d+"))).to_be_visible(timeout=180_000)

    job_use = TemplateUse.objects.get(output_kind="job")
    assert job_use.version == image_template.published_version and job_use.values["background"] == "blue"
    page.get_by_role("link", name="Gallery", exact=True).click()
    page.locator(".gallery-item").first.click()
    lineage = page.locator("table.lineage")
    link = lineage.get_by_role("link", name="/shapes v1")
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("section.card h2").first).to_contain_text("/shapes version 1")
    assert page.url.endswith(f"/templates/{image_template.pk}/versions/1/")
    expect(page.locator(".template-outputs img")).to_have_count(1)

    author.goto(f"{asgi_server}{template.get_absolute_url()}")
    _shot(author, "template-versions.png")


def test_a_menu_that_arrives_late_keeps_the_choice_made_with_the_arrows(asgi_server, new_page, project, alice):
    """Typing "/te" asks for the menu as the text changes; the last answer, held back here until
    the user has chosen from the earlier list with the arrows, must not move the choice."""
    actor = Membership.objects.get(user=alice, team=project.team)
    for name, command in (("Tea lines", "tea"), ("Teapot", "teapot")):
        services.template_create(actor=actor, project=project, name=name, command=command, kind="chat",
                                 body="Describe the tea.")
    page = new_page()
    _log_in(page, asgi_server, "alice")
    held, seen = [], []

    def hold_the_last(route):
        seen.append(route.request.url)
        if route.request.url.endswith("q=te"):
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r".*/templates/menu/.*"), hold_the_last)
    page.goto(f"{asgi_server}/projects/{project.pk}/chat/")
    box = page.get_by_label("Message")
    box.press_sequentially("/te")
    tea, teapot = (page.locator(f".template-option[data-command={c}]") for c in ("tea", "teapot"))
    expect(tea).to_have_class(re.compile("active"))  # an earlier list, first option chosen
    box.press("ArrowDown")
    expect(teapot).to_have_class(re.compile("active"))
    page.wait_for_timeout(300)
    assert len(held) == 1, f"the answer for /te should be held back: {seen}"
    with page.expect_response(lambda response: response.url.endswith("q=te")):
        held[0].continue_()
    page.wait_for_timeout(300)  # the swap follows the response at once
    expect(teapot).to_have_class(re.compile("active"))
    expect(tea).not_to_have_class(re.compile("active"))

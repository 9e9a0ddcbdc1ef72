"""Project knowledge in a real browser: the real ASGI server, a real worker, the default chat model.

bob uploads a PDF on the Knowledge tab and watches it index; he searches it and sees the terms
highlighted; he asks in chat with "Use project knowledge" and opens the reply's source: page 2.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.webapp.knowledge.pdfs import pdf_bytes
from webapp.chat.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

PAGES = ["Field guide. Introduction to the survey.",
         "Lighthouses. The Haldor lighthouse keeper sounds the fog horn every evening at nine.",
         "Appendix. Maps and tables."]


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_upload_watch_indexing_search_and_open_a_cited_source(asgi_server, celery_worker, new_page, project, bob):
    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}/projects/{project.pk}/knowledge/")

    form = page.locator("#document-add")
    form.get_by_label("File").set_input_files(
        files=[{"name": "guide.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes(PAGES)}])
    form.get_by_label("Title").fill("Field guide")
    form.get_by_role("button", name="Upload").click()
    row = page.locator("tr.document").first
    expect(row.locator(".document-title")).to_have_text("Field guide")
    expect(row.locator(".badge")).to_have_text("Indexed", timeout=180_000)  # the row polls while indexing
    expect(row).to_contain_text("3 pages")

    page.get_by_label("Search the documents").fill("fog horn lighthouse")
    page.get_by_role("button", name="Search").click()
    result = page.locator("li.result").first
    expect(result).to_contain_text("page 2")
    expect(result.locator("mark").first).to_be_visible()

    page.get_by_role("link", name="Chat").click()
    composer = page.locator("form.composer")
    composer.locator("summary").first.click()
    composer.get_by_label("Max new tokens").fill("12")
    composer.get_by_label("Use project knowledge").check()
    box = composer.get_by_label("Message")
    box.fill("When does the Haldor lighthouse keeper sound the fog horn?")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('[data-live-message]') !== null", timeout=30_000)
    reply = Message.objects.filter(role="assistant").latest("id")
    page.locator(f"#msg-{reply.pk}.status-done").wait_for(timeout=120_000)
    page.reload()
    source = page.locator(f"#source-{reply.pk}-1")
    expect(source).to_contain_text("[1] Field guide, page 2")
    source.locator("summary").click()
    expect(source.locator(".passage")).to_contain_text("Haldor lighthouse keeper")


def test_a_citation_opens_its_source_in_the_side_panel(asgi_server, new_page, project, conversation, bob):
    """A finished reply that cites [1] (made here: the small model does not always cite): the citation opens
    the side panel with the document's title, page and the passage; Escape closes it and focus returns."""
    from tests.helpers import membership, short_settings
    from webapp.chat import services
    from webapp.chat.markdown import render_markdown
    from webapp.core.jobs import JobStatus

    reply = services.message_send(conversation=conversation, actor=membership(bob, project), text="When is the horn?",
                                  parent=None, reply_settings=short_settings())
    text = "The keeper sounds it every evening at nine [1]."
    Message.objects.filter(pk=reply.pk).update(
        status=JobStatus.DONE, text=text, html=render_markdown(text),
        knowledge=[{"n": 1, "passage_id": 1, "document_id": 1, "title": "Field guide", "page": 2,
                    "heading": "Lighthouses", "text": PAGES[1]}])
    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}{conversation.get_absolute_url()}")
    panel = page.locator("#source-panel")
    expect(panel).to_be_hidden()
    citation = page.locator(f"#msg-{reply.pk} a.citation")
    citation.click()
    expect(panel).to_be_visible()
    expect(panel.locator(".source-panel-title")).to_have_text("[1] Field guide")
    expect(panel.locator(".source-panel-where")).to_have_text("page 2 · Lighthouses")
    expect(panel.locator(".source-panel-passage")).to_contain_text("sounds the fog horn every evening at nine")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(citation).to_be_focused()


def test_hash_in_the_composer_lists_the_indexed_documents_and_puts_the_pick_in_the_text(
        asgi_server, new_page, project, conversation, bob):
    from webapp.knowledge.models import Document

    for title in ("Field guide", "Fleet handbook"):
        Document.objects.create(project=project, title=title, filename=f"{title}.md", kind="md", byte_size=1,
                                sha256="0" * 64, file="-", status="done")
    page = new_page()
    _log_in(page, asgi_server, "bob")
    page.goto(f"{asgi_server}{conversation.get_absolute_url()}")
    box = page.locator("form.composer").get_by_label("Message")
    box.press_sequentially("When is the horn? #f")
    menu = page.locator(".mention-menu")
    expect(menu).to_be_visible()
    expect(menu.locator(".mention-option:not([hidden])")).to_have_count(2)
    box.press_sequentially("l")
    expect(menu.locator(".mention-option:not([hidden])")).to_have_text(["#fleet-handbook Fleet handbook"])
    box.press("Enter")  # picks, does not send
    expect(menu).to_be_hidden()
    expect(box).to_have_value("When is the horn? #fleet-handbook ")
    assert not Message.objects.filter(conversation=conversation).exists()

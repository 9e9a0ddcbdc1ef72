"""Project knowledge in chat: the reply stores the passages it read, the prompt carries them, the page cites."""
from __future__ import annotations

import dataclasses

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.helpers import chat_send, membership, short_settings
from webapp.chat import services as chat_services
from webapp.chat.models import Message
from webapp.knowledge import services
from webapp.knowledge.context import DEFAULT_CONTEXT_TEMPLATE, NO_SOURCES, context_render
from webapp.knowledge.tasks import index_document
from webapp.prompt_templates import services as template_services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server", "no_enqueue")]

HANDBOOK = b"# Leave\n\nEvery employee gets twenty-six days of paid leave a year.\n\n# Bikes\n\nBikes park in the yard."


@pytest.fixture
def handbook(project, bob):
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("handbook.md", HANDBOOK), title="Handbook")
    index_document(document.pk)
    return document


def _send(conversation, user, text, use_knowledge=True):
    return chat_services.message_send(
        conversation=conversation, actor=membership(user, conversation), text=text, parent=None,
        reply_settings=dataclasses.replace(short_settings(), use_knowledge=use_knowledge))


def test_a_reply_with_knowledge_stores_its_passages_and_its_prompt_carries_them(conversation, alice, handbook):
    reply = _send(conversation, alice, "How many days of paid leave do we get?")
    (first, *_) = reply.knowledge
    assert (first["n"], first["title"], first["heading"], first["document_id"]) == (1, "Handbook", "Leave", handbook.pk)
    assert "twenty-six days" in first["text"]

    request = chat_services._text_request(Message.objects.get(pk=reply.pk))
    prompt = request.messages[-1].content
    assert "[1] (Handbook, Leave)\n# Leave" not in prompt  # the heading is the passage's own first line
    assert "[1] (Handbook, Leave)" in prompt and "twenty-six days" in prompt
    assert prompt.endswith("Question: How many days of paid leave do we get?")


def test_nothing_relevant_stores_no_sources_and_tells_the_model(conversation, alice, handbook):
    reply = _send(conversation, alice, "Who won the 1954 world cup?")
    assert reply.knowledge == []
    prompt = chat_services._text_request(Message.objects.get(pk=reply.pk)).messages[-1].content
    assert NO_SOURCES in prompt and "say that the project's documents do not cover it" in prompt


def test_without_knowledge_the_prompt_is_the_question(conversation, alice, handbook):
    reply = _send(conversation, alice, "How many days of paid leave?", use_knowledge=False)
    assert reply.knowledge is None
    assert chat_services._text_request(reply).messages[-1].content == "How many days of paid leave?"


def test_the_team_edits_the_context_template_as_a_knowledge_chat_template(conversation, project, alice, handbook):
    template_services.template_create(actor=membership(alice, project), project=project, name="Knowledge",
                                      command="knowledge", kind="chat",
                                      body="Context:\n{context}\nQ: {question}\nAnswer in French.")
    reply = _send(conversation, alice, "paid leave days?")
    prompt = chat_services._text_request(Message.objects.get(pk=reply.pk)).messages[-1].content
    assert prompt.startswith("Context:\n[1] (Handbook, Leave)") and prompt.endswith("Q: paid leave days?\nAnswer in French.")


def test_braces_in_a_question_or_passage_are_text():
    passages = [{"n": 1, "title": "T", "page": 2, "heading": "", "text": "use {question} here"}]
    rendered = context_render(template=DEFAULT_CONTEXT_TEMPLATE, passages=passages, question="what is {context}?")
    assert "[1] (T, page 2)\nuse {question} here" in rendered and rendered.endswith("Question: what is {context}?")


def test_the_page_links_citations_and_marks_no_sources(conversation, alice, handbook, client_for):
    client = client_for(alice)
    cited = Message.objects.get(pk=chat_send(client, conversation, "paid leave days?", use_knowledge=True))
    assert cited.knowledge and cited.knowledge[0]["title"] == "Handbook"
    Message.objects.filter(pk=cited.pk).update(status="done", text="You get 26 days [1].", html="<p>You get 26 days [1].</p>")
    page = client.get(conversation.get_absolute_url(), {"leaf": cited.pk}).content.decode()
    assert f'<a class="citation" href="#source-{cited.pk}-1" data-source="1">[1]</a>' in page
    assert f'id="source-{cited.pk}-1"' in page and "[1] Handbook" in page

    Message.objects.filter(pk=cited.pk).update(knowledge=[])
    page = client.get(conversation.get_absolute_url(), {"leaf": cited.pk}).content.decode()
    assert "no sources" in page and 'class="citation"' not in page


def test_the_conversation_setting_turns_knowledge_on_for_the_next_messages(conversation, alice, handbook):
    settings = dataclasses.replace(short_settings(), use_knowledge=True)
    chat_services.conversation_settings_update(conversation=conversation, actor=membership(alice, conversation),
                                               reply_settings=settings)
    from webapp.chat.selectors import conversation_settings

    conversation.refresh_from_db()
    assert conversation.use_knowledge and conversation_settings(conversation=conversation).use_knowledge


def test_a_hash_mention_picks_the_documents_and_turns_knowledge_on(conversation, project, alice, bob, handbook):
    other = services.document_add(actor=membership(bob, project), project=project, title="Bike rules",
                                  upload=SimpleUploadedFile("bikes.md", b"# Bikes\n\nBikes get paid leave too."))
    index_document(other.pk)
    everywhere = _send(conversation, alice, "paid leave days?")
    assert {p["document_id"] for p in everywhere.knowledge} == {handbook.pk, other.pk}

    picked = _send(conversation, alice, "paid leave days in #handbook?", use_knowledge=False)
    assert {p["document_id"] for p in picked.knowledge} == {handbook.pk}
    by_title = _send(conversation, alice, "What does #bike-rules say about leave?", use_knowledge=False)
    assert {p["document_id"] for p in by_title.knowledge} == {other.pk}
    plain = _send(conversation, alice, "Is #nothing-like-this here? Leave?", use_knowledge=False)
    assert plain.knowledge is None


def test_the_prompt_history_shows_the_passages_a_reply_read(conversation, alice, handbook, client):
    from django.urls import reverse

    from webapp.prompts.models import PromptRecord

    reply = _send(conversation, alice, "How many days of paid leave do we get?")
    record = PromptRecord.objects.get(pk=Message.objects.get(pk=reply.parent_id).prompt_id)
    sources = record.params["knowledge"]
    assert sources[0] == {"n": 1, "title": "Handbook", "page": None, "heading": "Leave",
                          "passage_id": reply.knowledge[0]["passage_id"], "document_id": handbook.pk}
    plain = _send(conversation, alice, "Tell me a joke.", use_knowledge=False)
    assert "knowledge" not in PromptRecord.objects.get(pk=Message.objects.get(pk=plain.parent_id).prompt_id).params

    client.force_login(alice)
    page = client.get(reverse("prompts:history", args=[conversation.project_id])).content.decode()
    assert "Sources: [1] Handbook · Leave" in page


def test_the_composer_offers_the_indexed_documents_to_mention_and_a_viewer_gets_no_composer(
        conversation, project, bob, carol, handbook, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile as Upload

    services.document_add(actor=membership(bob, project), project=project, upload=Upload("draft.md", b"# Draft"),
                          title="Draft notes")  # not indexed yet: not offered
    page = client_for(bob).get(conversation.get_absolute_url()).content.decode()
    menu = page[page.index('class="mention-menu'):page.index("</ul>", page.index('class="mention-menu'))]
    assert 'data-mention="handbook"' in menu and "Handbook" in menu and "draft" not in menu
    assert 'class="mention-menu' not in client_for(carol).get(conversation.get_absolute_url()).content.decode()
    # The name offered is the one a send reads.
    from webapp.knowledge.context import knowledge_mentions

    assert knowledge_mentions(project_id=project.pk, text="leave in #handbook") == [handbook.pk]

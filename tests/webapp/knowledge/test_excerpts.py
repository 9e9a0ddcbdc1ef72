"""What the prompt holds of each passage: the sentences that best match the question, within a budget."""
from __future__ import annotations

import dataclasses

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.helpers import membership, short_settings
from webapp.chat import services as chat_services
from webapp.chat.models import Message
from webapp.knowledge import services
from webapp.knowledge.chunking import count_tokens
from webapp.knowledge.context import DEFAULT_CONTEXT_TEMPLATE, GAP, context_render, excerpts
from webapp.knowledge.tasks import index_document

FILLER = "The council meets in the old hall. Records are kept in the archive. "
TRAINS = FILLER + "Trains leave Arlen station for the coast every 42 minutes. The line opened in 1901. " + FILLER
FERRY = "Ferries from Brisk cross the bay at dawn. Tickets are sold on the quay. The harbour closes in winter."
QUESTION = "How often is there a train from Arlen to the coast?"


def test_a_passage_is_cut_to_its_best_sentence_and_the_one_after_it():
    (trains,) = excerpts(texts=[TRAINS], question=QUESTION, budget=100)
    assert trains == "Trains leave Arlen station for the coast every 42 minutes. The line opened in 1901."
    assert "council" not in trains


def test_left_out_sentences_are_marked_and_the_passage_order_kept():
    text = "Arlen has a station. The council meets in the old hall. Trains leave Arlen for the coast hourly."
    (excerpt,) = excerpts(texts=[text], question=QUESTION, budget=100)
    assert excerpt == f"Arlen has a station. {GAP} Trains leave Arlen for the coast hourly."
    assert excerpt.index("station") < excerpt.index("hourly")


def test_the_budget_holds_for_all_passages_and_each_gets_its_best_sentence_first():
    texts = [TRAINS, FERRY, TRAINS.replace("Arlen", "Calder")]
    got = excerpts(texts=texts, question=QUESTION, budget=30)
    assert sum(count_tokens(excerpt) for excerpt in got) <= 30
    assert got[0].startswith("Trains leave Arlen station") and all(got)


def test_a_long_best_sentence_is_cut_to_leave_the_others_their_share():
    long = "Trains leave Arlen " + "and stop at every hamlet " * 20 + "on the way to the coast."
    got = excerpts(texts=[long, FERRY], question=QUESTION, budget=24)
    assert got[0].startswith("Trains leave Arlen") and got[0].endswith("\u2026")
    assert got[1] == "Ferries from Brisk cross the bay at dawn."
    assert sum(count_tokens(excerpt) for excerpt in got) <= 24


def test_a_first_line_that_repeats_the_heading_is_left_out():
    (excerpt,) = excerpts(texts=["Trains\n" + TRAINS], question=QUESTION, budget=100, headings=["Trains"])
    assert excerpt.startswith("Trains leave Arlen station")
    (kept,) = excerpts(texts=["Trains\n" + TRAINS], question=QUESTION, budget=100, headings=["Timetable"])
    assert kept.startswith(f"Trains {GAP} Trains leave Arlen")


def test_a_passage_that_shares_no_word_gives_its_opening():
    (ferry,) = excerpts(texts=[FERRY], question="zebra crossings?", budget=100)
    assert ferry == "Ferries from Brisk cross the bay at dawn. Tickets are sold on the quay."


def test_an_older_snapshot_without_an_excerpt_is_read_whole():
    passages = [{"n": 1, "title": "T", "page": 0, "heading": "", "text": "All of it. Every word."}]
    assert "[1] (T)\nAll of it. Every word." in context_render(template=DEFAULT_CONTEXT_TEMPLATE, passages=passages,
                                                             question="q")


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_server", "no_enqueue")
@pytest.mark.parametrize("budget", [100, 0])
def test_a_reply_stores_and_its_prompt_holds_the_excerpt_or_with_no_budget_the_passage(
        conversation, project, alice, bob, settings, budget, client_for):
    settings.KNOWLEDGE_CONTEXT_TOKENS = budget
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("guide.md", f"# Trains\n\n{TRAINS}".encode()),
                                      title="Guide")
    index_document(document.pk)
    reply = chat_services.message_send(
        conversation=conversation, actor=membership(alice, conversation), text=QUESTION, parent=None,
        reply_settings=dataclasses.replace(short_settings(), use_knowledge=True))
    (source,) = reply.knowledge
    prompt = chat_services._text_request(Message.objects.get(pk=reply.pk)).messages[-1].content
    assert "every 42 minutes" in source["excerpt"] and "every 42 minutes" in prompt
    if budget:
        assert "council" in source["text"] and "council" not in source["excerpt"] and "council" not in prompt
        page = client_for(alice).get(conversation.get_absolute_url(), {"leaf": reply.pk}).content.decode()
        read = page[page.index("The reply read: \u201c"):]
        assert read.index("every 42 minutes") < read.index("\u201d</p>")
    else:
        assert source["excerpt"] == source["text"] and "council" in prompt

"""Knowledge on the real stack: embedded Redis, a real Celery worker indexing an uploaded PDF."""
from __future__ import annotations

import dataclasses

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import membership_of
from tests.helpers import short_settings, wait_for
from tests.webapp.knowledge.pdfs import pdf_bytes
from webapp.chat import services as chat_services
from webapp.chat.models import Message
from webapp.knowledge import services
from webapp.knowledge.models import Document
from webapp.knowledge.search import bm25_search

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 180  # the worker may still be loading the chat model


def _finished(document_id: int) -> Document | None:
    document = Document.objects.get(pk=document_id)
    return None if document.is_live else document


def test_a_worker_indexes_an_uploaded_pdf_and_search_finds_page_two(project, bob, celery_worker):
    pages = ["Quarterly report. Contents and summary.",
             "Operations. The warehouse in Rotterdam ships 4,200 crates a week.",
             "Outlook. Hiring continues next year."]
    document = services.document_add(actor=membership_of(bob, project.team), project=project,
                                      upload=SimpleUploadedFile("report.pdf", pdf_bytes(pages)), title="Q3 report")

    document = wait_for(lambda: _finished(document.pk), JOB_TIMEOUT, "the document to be indexed")

    assert document.status == "done", document.reason
    assert (document.pages_done, document.pages_total, document.passages_count) == (3, 3, 3)
    assert document.worker  # a worker claimed it
    (best, *_) = bm25_search(project_id=project.pk, query="How many crates does the Rotterdam warehouse ship?")
    assert best.passage.page == 2 and best.document.title == "Q3 report"


def test_a_bad_pdf_fails_on_the_worker_with_the_files_name(project, bob, celery_worker):
    document = services.document_add(actor=membership_of(bob, project.team), project=project,
                                      upload=SimpleUploadedFile("scan.pdf", pdf_bytes(["", ""])))
    document = wait_for(lambda: _finished(document.pk), JOB_TIMEOUT, "the document to fail")
    assert document.status == "failed"
    assert document.reason.startswith("scan.pdf: This PDF has no text layer")
    assert not document.passages.exists()


def test_a_question_about_page_two_gets_a_reply_citing_page_two(project, bob, celery_worker):
    pages = ["Field guide. Introduction to the survey.",
             "Lighthouses. The Haldor lighthouse keeper logs the fog horn every evening at nine.",
             "Appendix. Maps and tables."]
    document = services.document_add(actor=membership_of(bob, project.team), project=project,
                                      upload=SimpleUploadedFile("guide.pdf", pdf_bytes(pages)), title="Field guide")
    assert wait_for(lambda: _finished(document.pk), JOB_TIMEOUT, "the document to be indexed").status == "done"
    actor = membership_of(bob, project.team)
    knowledge_settings = dataclasses.replace(short_settings(), use_knowledge=True)
    conversation = chat_services.conversation_create(project=project, actor=actor, reply_settings=knowledge_settings)

    reply = chat_services.message_send(conversation=conversation, actor=actor, parent=None,
                                       text="When does the Haldor lighthouse keeper log the fog horn?",
                                       reply_settings=knowledge_settings)
    reply = wait_for(lambda: (m := Message.objects.get(pk=reply.pk)).status in ("done", "failed") and m,
                     JOB_TIMEOUT, "the reply on the real model")

    assert reply.status == "done", reply.reason
    assert reply.text.strip()  # the real default model wrote an answer from the prompt with the passage
    (first, *_) = reply.knowledge
    assert (first["n"], first["title"], first["page"]) == (1, "Field guide", 2)
    assert "Haldor" in first["text"]


def test_the_openai_client_adds_a_file_that_a_worker_indexes_and_lists_it(project, bob, asgi_server, celery_worker):
    from openai import OpenAI

    from tests.helpers import make_key

    client = OpenAI(base_url=f"{asgi_server}/v1", api_key=make_key(bob, project).secret, max_retries=0, timeout=60)
    created = client.files.create(file=("minutes.pdf", pdf_bytes(["Minutes.", "The budget is 7,300 euros."])),
                                  purpose="assistants")
    assert (created.filename, created.purpose, created.object) == ("minutes.pdf", "assistants", "file")
    document_id = int(created.id.removeprefix("file-"))

    assert wait_for(lambda: _finished(document_id), JOB_TIMEOUT, "the file to be indexed").status == "done"
    (listed,) = client.files.list().data
    assert (listed.id, listed.status) == (created.id, "processed")
    (best, *_) = bm25_search(project_id=project.pk, query="budget euros")
    assert best.passage.page == 2


def test_the_openai_client_asks_with_knowledge_and_gets_citations(project, bob, asgi_server, celery_worker):
    from openai import OpenAI

    from tests.helpers import make_key
    from webapp.chat.params import default_model_name

    client = OpenAI(base_url=f"{asgi_server}/v1", api_key=make_key(bob, project).secret, max_retries=0, timeout=300)
    created = client.files.create(file=("atlas.pdf", pdf_bytes(["Atlas.", "Mount Vexa is 4,810 metres high."])),
                                  purpose="assistants")
    wait_for(lambda: _finished(int(created.id.removeprefix("file-"))), JOB_TIMEOUT, "the file to be indexed")
    question = [{"role": "user", "content": "How high is Mount Vexa?"}]

    reply = client.chat.completions.create(model=default_model_name(), messages=question, max_tokens=8,
                                           extra_body={"knowledge": [created.id]})
    (first, *_) = reply.model_extra["citations"]
    assert (first["n"], first["title"], first["page"]) == (1, "atlas", 2) and "4,810" in first["text"]
    assert reply.choices[0].message.content

    chunks = list(client.chat.completions.create(model=default_model_name(), messages=question, max_tokens=8,
                                                 stream=True, extra_body={"knowledge": True}))
    last = chunks[-1]
    assert last.choices == [] and last.model_extra["citations"][0]["page"] == 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices)

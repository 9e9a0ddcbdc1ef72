"""Knowledge on the real stack: embedded Redis, a real Celery worker indexing an uploaded PDF."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import membership_of
from tests.helpers import wait_for
from tests.webapp.knowledge.pdfs import pdf_bytes
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

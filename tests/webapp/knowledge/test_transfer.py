"""A project's export carries its knowledge: documents (with their files) and passages, searchable after import."""
from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.helpers import membership
from webapp.knowledge import services
from webapp.knowledge.models import Document, Passage
from webapp.knowledge.search import bm25_search
from webapp.knowledge.tasks import index_document
from webapp.workspaces.transfer import project_export, project_import

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server", "no_enqueue")]


def test_an_imported_project_has_the_documents_passages_and_files(project, bob, other_team, tmp_path):
    text = b"# Leave\n\nStaff get twenty-six days of paid leave.\n\n# Travel\n\nBook trains through the portal."
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("handbook.md", text), title="Handbook")
    index_document(document.pk)
    archive = tmp_path / "p.tar.gz"
    summary = project_export(project=project, path=archive)
    assert summary.rows["knowledge.Document"] == 1 and summary.rows["knowledge.Passage"] == 2

    copy = project_import(path=archive, team=other_team)
    moved = Document.objects.get(project=copy)
    assert moved.pk != document.pk and (moved.title, moved.status) == ("Handbook", "done")
    with default_storage.open(moved.file, "rb") as stored:
        assert stored.read() == text
    assert sorted(Passage.objects.filter(project=copy).values_list("heading", flat=True)) == ["Leave", "Travel"]
    assert Passage.objects.filter(project=copy, document=moved).count() == 2
    hits = bm25_search(project_id=copy.pk, query="paid leave days")  # the FTS index took the new rows
    assert hits and hits[0].passage.document_id == moved.pk

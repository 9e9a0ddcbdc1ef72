"""Adding, indexing, replacing and deleting documents: the services and the indexing job."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.helpers import membership
from tests.webapp.knowledge.pdfs import encrypted_pdf_bytes, pdf_bytes
from webapp.core import jobs
from webapp.knowledge import services
from webapp.knowledge.models import Document, Passage
from webapp.knowledge.tasks import index_document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server", "no_enqueue")]


def _upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def _add(project, user, name: str, data: bytes, **kwargs) -> Document:
    return services.document_add(actor=membership(user, project), project=project, upload=_upload(name, data),
                                 **kwargs)


def _indexed(document: Document) -> Document:
    index_document(document.pk)
    document.refresh_from_db()
    return document


def test_a_member_adds_a_document_and_a_worker_indexes_it(project, bob, no_enqueue,
                                                          django_capture_on_commit_callbacks):
    data = b"# Guide\n\nThe vault code is 4471.\n\n# Other\n\nNothing."
    with django_capture_on_commit_callbacks(execute=True):
        document = _add(project, bob, "guide.md", data, title="")
    assert (document.title, document.kind, document.byte_size, document.status) == ("guide", "md", len(data), "queued")
    assert no_enqueue.ids() == [document.pk]

    document = _indexed(document)

    assert document.status == "done", document.reason
    assert (document.pages_done, document.pages_total, document.passages_count) == (1, 1, 2)
    passages = list(Passage.objects.filter(document=document))
    assert [(p.heading, p.project_id) for p in passages] == [("Guide", project.pk), ("Other", project.pk)]
    assert "4471" in passages[0].text


def test_pdf_passages_keep_their_page(project, bob):
    document = _indexed(_add(project, bob, "report.pdf", pdf_bytes(["Cover", "Revenue grew 12 percent."])))
    assert document.status == "done" and document.pages_total == 2
    assert [(p.page, p.text) for p in document.passages.all()] == [(1, "Cover"), (2, "Revenue grew 12 percent.")]


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("secret.pdf", encrypted_pdf_bytes(["hidden"]), "secret.pdf: This PDF is encrypted"),
    ("scan.pdf", pdf_bytes(["", ""]), "scan.pdf: This PDF has no text layer"),
    ("fake.docx", b"PK\x03\x04 nope", "fake.docx: This is not a readable .docx"),
])
def test_a_file_the_worker_cannot_read_fails_naming_it_and_stores_nothing(project, bob, name, data, reason):
    document = _indexed(_add(project, bob, name, data))
    assert document.status == "failed"
    assert document.reason.startswith(reason)
    assert not Passage.objects.exists()


def test_a_pdf_bomb_fails_and_stores_nothing(project, bob, settings):
    settings.KNOWLEDGE_MAX_PDF_PAGES = 3
    document = _indexed(_add(project, bob, "bomb.pdf", pdf_bytes(["a", "b", "c", "d"])))
    assert document.status == "failed" and "4 pages, more than the 3" in document.reason
    assert not Passage.objects.exists()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("logo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "logo.txt: This is a binary file"),
    ("latin.md", "Caf\u00e9".encode("latin-1"), "latin.md: The text is not in UTF-8"),
    ("tool.exe", b"MZ", "is not a kind of file Atelier indexes"),
    ("empty.txt", b"", "The file is empty"),
])
def test_a_bad_upload_is_refused_on_the_file_field_and_nothing_is_stored(project, bob, no_enqueue, name, data,
                                                                         message):
    with pytest.raises(ValidationError) as raised:
        _add(project, bob, name, data)
    assert message in " ".join(raised.value.message_dict["file"])
    assert not Document.objects.exists() and not no_enqueue


def test_a_file_over_the_size_limit_is_refused(project, bob, settings):
    settings.MAX_DOCUMENT_BYTES = 10
    with pytest.raises(ValidationError, match="at most 10 bytes"):
        _add(project, bob, "big.txt", b"x" * 11)
    assert not Document.objects.exists()


def test_a_viewer_cannot_add_a_document(project, carol):
    with pytest.raises(PermissionDenied, match="Viewers cannot add or replace documents"):
        _add(project, carol, "a.txt", b"hello")


def test_a_member_deletes_only_their_own_documents(project, alice, bob, dave, django_capture_on_commit_callbacks):
    document = _indexed(_add(project, bob, "a.txt", b"hello"))
    assert default_storage.exists(document.file)
    with pytest.raises(PermissionDenied, match="Members can only delete documents"):
        services.document_delete(actor=membership(dave, project), document=document)
    with django_capture_on_commit_callbacks(execute=True):
        services.document_delete(actor=membership(alice, project), document=document)
    assert not Document.objects.exists() and not Passage.objects.exists()
    assert not default_storage.exists(document.file)


def test_a_new_version_replaces_the_old_passages_once_indexed(project, bob):
    old = _indexed(_add(project, bob, "v1.txt", b"The old fact.", title="Facts"))
    new = services.document_replace(actor=membership(bob, project), document=old,
                                    upload=_upload("v2.txt", b"The new fact."))
    assert (new.title, new.version, new.replaces_id) == ("Facts", 2, old.pk)
    assert Passage.objects.get().text == "The old fact."  # still searchable while the new one indexes

    _indexed(new)

    assert list(Document.objects.values_list("pk", flat=True)) == [new.pk]
    assert list(Passage.objects.values_list("text", flat=True)) == ["The new fact."]


def test_a_failed_new_version_leaves_the_old_one(project, bob):
    old = _indexed(_add(project, bob, "v1.txt", b"The old fact."))
    new = services.document_replace(actor=membership(bob, project), document=old,
                                    upload=_upload("v2.pdf", b"%PDF-1.4 broken"))
    assert _indexed(new).status == "failed"
    assert Document.objects.get(pk=old.pk).status == "done"
    assert list(Passage.objects.values_list("text", flat=True)) == ["The old fact."]


def test_a_queued_document_is_cancelled_and_never_indexed(project, bob):
    document = _add(project, bob, "a.txt", b"hello")
    assert services.document_stop(actor=membership(bob, project), document=document) == "stopped"
    index_document(document.pk)
    document.refresh_from_db()
    assert document.status == "stopped" and not Passage.objects.exists()


def test_a_stop_during_indexing_ends_it_stopped_with_nothing_stored(project, bob, monkeypatch):
    document = _add(project, bob, "r.pdf", pdf_bytes(["one", "two", "three"]))
    real_page = services._Progress.page

    def page_then_stop(progress, done, total):
        real_page(progress, done, total)
        if done == 1:  # a member pressed Cancel while page 1 was read
            jobs.job_stop_request(kind=services.INDEX_JOB, job=document, reason="Stopped.")
            import time
            time.sleep(1.5)  # the stop watch polls Redis each second

    monkeypatch.setattr(services._Progress, "page", page_then_stop)
    document = _indexed(document)
    assert document.status == "stopped"
    assert document.pages_done < 3 and not Passage.objects.exists()


def test_a_document_deleted_while_it_is_indexed_ends_quietly(project, bob, monkeypatch):
    document = _add(project, bob, "r.pdf", pdf_bytes(["one", "two"]))
    real_page = services._Progress.page

    def page_then_delete(progress, done, total):
        real_page(progress, done, total)
        if done == 1:
            Document.objects.filter(pk=document.pk).delete()

    monkeypatch.setattr(services._Progress, "page", page_then_delete)
    assert services.document_index(document_id=document.pk, worker="w") is None
    assert not Document.objects.exists() and not Passage.objects.exists()


def test_files_go_with_their_rows_when_replaced_or_with_the_project(project, alice, bob,
                                                                     django_capture_on_commit_callbacks):
    from webapp.workspaces import services as workspace_services

    old = _indexed(_add(project, bob, "v1.txt", b"Old."))
    new = services.document_replace(actor=membership(bob, project), document=old, upload=_upload("v2.txt", b"New."))
    with django_capture_on_commit_callbacks(execute=True):
        _indexed(new)
    assert not default_storage.exists(old.file) and default_storage.exists(new.file)
    with django_capture_on_commit_callbacks(execute=True):
        workspace_services.project_delete(actor=membership(alice, project), project=project)
    assert not default_storage.exists(new.file)

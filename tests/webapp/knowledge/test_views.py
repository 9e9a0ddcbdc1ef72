"""The Knowledge tab: who sees what, and what the forms say."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.helpers import membership
from webapp.knowledge import services
from webapp.knowledge.models import Document
from webapp.knowledge.tasks import index_document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server", "no_enqueue")]


@pytest.fixture
def document(project, bob):
    document = services.document_add(actor=membership(bob, project), project=project,
                                      upload=SimpleUploadedFile("handbook.md", b"# Leave\n\nTwenty days a year."))
    index_document(document.pk)
    document.refresh_from_db()
    return document


def _url(name: str, document: Document) -> str:
    return reverse(name, kwargs={"project_id": document.project_id, "document_id": document.pk})


def test_the_tab_lists_documents_with_size_author_and_status(project, document, carol, client_for):
    response = client_for(carol).get(reverse("knowledge:index", kwargs={"project_id": project.pk}))
    page = response.content.decode()
    assert response.status_code == 200
    assert "handbook" in page and "bob" in page and "Indexed" in page and "1 passage" in page
    assert 'id="document-add"' not in page  # viewers read only
    assert "Delete</button>" not in page


def test_a_member_uploads_from_the_tab(project, bob, client_for):
    response = client_for(bob).post(reverse("knowledge:add", kwargs={"project_id": project.pk}),
                                    {"file": SimpleUploadedFile("notes.txt", b"Hello."), "title": "Notes"})
    document = Document.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"#document-{document.pk}")
    assert (document.title, document.added_by, document.status) == ("Notes", bob, "queued")


def test_a_bad_upload_shows_the_error_on_the_file_field(project, bob, client_for):
    response = client_for(bob).post(reverse("knowledge:add", kwargs={"project_id": project.pk}),
                                    {"file": SimpleUploadedFile("photo.txt", b"\x00\x01\x02binary")})
    assert response.status_code == 400
    assert "photo.txt: This is a binary file" in response.content.decode()
    assert response.context["form"].errors["file"]
    assert not Document.objects.exists()


def test_a_live_document_polls_and_a_finished_one_does_not(project, bob, document, client_for):
    assert "hx-trigger" not in client_for(bob).get(_url("knowledge:document", document)).content.decode()
    queued = services.document_add(actor=membership(bob, project), project=project,
                                    upload=SimpleUploadedFile("b.txt", b"x"))
    fragment = client_for(bob).get(_url("knowledge:document", queued)).content.decode()
    assert 'hx-trigger="every 1s"' in fragment and "Cancel</button>" in fragment


def test_cancel_replace_and_delete_from_the_tab(project, alice, bob, document, client_for):
    client = client_for(bob)
    response = client.post(_url("knowledge:replace", document), {"file": SimpleUploadedFile("v2.md", b"New.")})
    new = Document.objects.exclude(pk=document.pk).get()
    assert response.status_code == 302 and new.replaces_id == document.pk
    client.post(_url("knowledge:stop", new))
    new.refresh_from_db()
    assert new.status == "stopped"
    client_for(alice).post(_url("knowledge:delete", document))
    assert list(Document.objects.values_list("pk", flat=True)) == [new.pk]


@pytest.mark.parametrize("name", ["knowledge:document", "knowledge:replace", "knowledge:delete", "knowledge:stop"])
def test_an_outsider_gets_404_on_every_document_url(name, document, mallory, client_for):
    client = client_for(mallory)
    assert client.get(_url(name, document)).status_code in (404, 405)
    assert client.post(_url(name, document)).status_code in (404, 405)
    assert Document.objects.filter(pk=document.pk, status="done").exists()


def test_an_outsider_gets_404_on_the_tab_and_upload(project, mallory, client_for):
    client = client_for(mallory)
    assert client.get(reverse("knowledge:index", kwargs={"project_id": project.pk})).status_code == 404
    response = client.post(reverse("knowledge:add", kwargs={"project_id": project.pk}),
                           {"file": SimpleUploadedFile("a.txt", b"hi")})
    assert response.status_code == 404 and not Document.objects.exists()


def test_a_document_of_another_project_is_404(other_project, document, mallory, client_for):
    url = reverse("knowledge:document", kwargs={"project_id": other_project.pk, "document_id": document.pk})
    assert client_for(mallory).get(url).status_code == 404


def test_a_viewer_gets_403_on_every_write(project, document, carol, client_for):
    client = client_for(carol)
    upload = reverse("knowledge:add", kwargs={"project_id": project.pk})
    assert client.post(upload, {"file": SimpleUploadedFile("a.txt", b"hi")}).status_code == 403
    assert client.post(_url("knowledge:replace", document),
                       {"file": SimpleUploadedFile("a.txt", b"hi")}).status_code == 403
    assert client.post(_url("knowledge:delete", document)).status_code == 403
    assert client.post(_url("knowledge:stop", document)).status_code == 403
    assert list(Document.objects.values_list("pk", "status")) == [(document.pk, "done")]

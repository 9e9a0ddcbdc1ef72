"""``/v1/files`` (``purpose="assistants"``): documents added and listed by scripts, with an API key."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.helpers import make_key
from webapp.knowledge.models import Document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server", "no_enqueue")]

URL = "/v1/files"


def _client(user, project) -> tuple[Client, dict[str, str]]:
    return Client(), {"Authorization": f"Bearer {make_key(user, project).secret}"}


def _upload(client, headers, name="notes.md", data=b"# Notes\n\nHello.", purpose="assistants"):
    import io

    upload = io.BytesIO(data)
    upload.name = name
    return client.post(URL, {"file": upload, "purpose": purpose}, headers=headers)


def test_the_files_url_is_the_api_files_endpoint():
    assert reverse("api:files") == URL


def test_a_key_adds_a_document_and_lists_it(project, bob):
    client, headers = _client(bob, project)
    response = _upload(client, headers)
    assert response.status_code == 200, response.content
    body = response.json()
    document = Document.objects.get()
    assert body == {"id": f"file-{document.pk}", "object": "file", "bytes": 15, "created_at": body["created_at"],
                    "filename": "notes.md", "purpose": "assistants", "status": "uploaded", "status_details": None}
    assert (document.project, document.added_by) == (project, bob)
    listed = client.get(URL, headers=headers).json()
    assert listed["object"] == "list" and [f["id"] for f in listed["data"]] == [body["id"]]


@pytest.mark.parametrize(("fields", "param", "message"), [
    ({"purpose": "fine-tune"}, "purpose", "must be 'assistants'"),
    ({"name": "logo.txt", "data": b"\x00\x01binary"}, "file", "logo.txt: This is a binary file"),
])
def test_a_bad_upload_is_a_400_naming_the_field(project, bob, fields, param, message):
    client, headers = _client(bob, project)
    response = _upload(client, headers, **fields)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"]
    assert not Document.objects.exists()


def test_a_viewers_key_cannot_add_a_document(project, carol):
    client, headers = _client(carol, project)
    assert _upload(client, headers).status_code == 403
    assert not Document.objects.exists()


def test_an_outsider_key_sees_only_its_own_projects_files(project, other_project, bob, mallory):
    """An outsider's key ("api:files") lists and adds only in the outsider's own project."""
    client, headers = _client(bob, project)
    _upload(client, headers)
    outsider, outsider_headers = _client(mallory, other_project)
    assert outsider.get(URL, headers=outsider_headers).json()["data"] == []
    assert _upload(outsider, outsider_headers).status_code == 200
    assert Document.objects.filter(project=other_project).count() == 1
    assert Document.objects.filter(project=project).count() == 1
    assert Client().get(URL).status_code == 401  # a session or nobody: no key, no files


CHAT = "/v1/chat/completions"


def _chat(user, project, knowledge):
    from tests.helpers import ApiClient
    from webapp.chat.params import default_model_name

    client = ApiClient(make_key(user, project).secret)
    return client.post(CHAT, {"model": default_model_name(), "messages": [{"role": "user", "content": "hi"}],
                              "knowledge": knowledge})


@pytest.mark.parametrize("value", ["yes", [], ["file-x"], [True], {"ids": [1]}])
def test_a_bad_knowledge_value_is_a_400_naming_it(project, bob, value):
    response = _chat(bob, project, value)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "knowledge"


def test_an_outsider_key_cannot_ask_about_another_projects_file(project, other_project, bob, mallory, no_enqueue):
    """api:chat_completions with knowledge naming a file of another project: 404, and nothing is queued."""
    client, headers = _client(bob, project)
    file_id = _upload(client, headers).json()["id"]
    sent = len(no_enqueue)
    response = _chat(mallory, other_project, [file_id])
    assert response.status_code == 404 and file_id in response.json()["error"]["message"]
    assert len(no_enqueue) == sent

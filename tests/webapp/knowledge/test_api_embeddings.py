"""``POST /v1/embeddings`` in OpenAI's shape, from the configured embedding model (``api:embeddings``).

Refusals need no model; the ``model`` tests load the real default one and call it through the
official ``openai`` client (in process, over httpx2's WSGI transport).
"""
from __future__ import annotations

import base64

import httpx2
import numpy as np
import pytest
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from openai import OpenAI

from generation.embed import DEFAULT_MODEL, encoder_get
from tests.helpers import make_key

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]

URL = "/v1/embeddings"


def _post(user, project, body, key=None):
    secret = key or make_key(user, project).secret
    return Client().post(URL, body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"})


def test_the_embeddings_url_is_the_api_endpoint_and_documented():
    assert reverse("api:embeddings") == URL
    paths = Client().get("/v1/openapi.json").json()["paths"]
    assert {"/embeddings", "/files"} <= set(paths)
    assert set(paths["/files"]) == {"get", "post"}


def test_without_a_key_or_from_an_outsider_nothing_is_embedded(project, other_project, mallory, settings):
    """api:embeddings needs a working key; an outsider's key acts only in its own project (no data is shared)."""
    settings.EMBEDDING_MODEL = ""
    assert Client().post(URL, {"model": "m", "input": "x"}, content_type="application/json").status_code == 401
    response = _post(mallory, other_project, {"model": DEFAULT_MODEL, "input": "hello"})
    assert response.status_code == 503  # the outsider's own key works, and gets the server's answer


def test_with_no_embedding_model_configured_the_answer_is_a_clear_503(project, bob, settings):
    settings.EMBEDDING_MODEL = ""
    response = _post(bob, project, {"model": DEFAULT_MODEL, "input": "hello"})
    assert response.status_code == 503
    assert "ATELIER_EMBEDDING_MODEL" in response.json()["error"]["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "hi"}, "model"),
    ({"model": DEFAULT_MODEL}, "input"),
    ({"model": DEFAULT_MODEL, "input": []}, "input"),
    ({"model": DEFAULT_MODEL, "input": ["ok", ""]}, "input"),
    ({"model": DEFAULT_MODEL, "input": [[1, 2, 3]]}, "input"),
    ({"model": DEFAULT_MODEL, "input": "hi", "encoding_format": "int8"}, "encoding_format"),
    ({"model": DEFAULT_MODEL, "input": "hi", "dimensions": 64}, "dimensions"),
    ({"model": "text-embedding-3-small", "input": "hi"}, "model"),
])
def test_bad_requests_name_the_field(project, bob, settings, body, param):
    settings.EMBEDDING_MODEL = DEFAULT_MODEL
    response = _post(bob, project, body)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["param"] == param


def test_a_viewer_key_may_embed(project, carol, settings):
    """Embedding reads nothing and writes nothing of the project: a viewer's key gets the same 503 as anyone."""
    settings.EMBEDDING_MODEL = ""
    assert _post(carol, project, {"model": DEFAULT_MODEL, "input": "hi"}).status_code == 503


@pytest.mark.model
def test_the_openai_client_gets_the_models_vectors_as_floats_and_base64(project, bob, settings):
    settings.EMBEDDING_MODEL = DEFAULT_MODEL
    # As Django's test client does: the request's end must not close the test's database connection.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        _ask_through_the_openai_client(project, bob)
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


def _ask_through_the_openai_client(project, bob):
    http = httpx2.Client(transport=httpx2.WSGITransport(app=get_wsgi_application()))
    client = OpenAI(base_url="http://testserver/v1", api_key=make_key(bob, project).secret, http_client=http,
                    max_retries=0)
    texts = ["How do I reset my password?", "I forgot my login credentials.", "Revenue grew by eight percent."]
    expected = encoder_get(DEFAULT_MODEL).encode(texts)
    asked = {"float": {"encoding_format": "float"}, "default": {}, "base64": {"encoding_format": "base64"}}
    for name, extra in asked.items():  # unless told, the client asks for base64 and decodes it itself
        result = client.embeddings.create(model=DEFAULT_MODEL, input=texts, **extra)
        rows = [np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") if name == "base64" else item.embedding
                for item in result.data]
        vectors = np.array(rows, dtype=np.float32)
        assert [item.index for item in result.data] == [0, 1, 2]
        assert np.allclose(vectors, expected, atol=1e-5), name
        assert result.model == DEFAULT_MODEL and result.usage.prompt_tokens > 10
    single = client.embeddings.create(model=DEFAULT_MODEL, input="How do I reset my password?")
    assert np.allclose(single.data[0].embedding, expected[0], atol=1e-5)

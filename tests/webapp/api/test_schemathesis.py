"""Schemathesis against the /v1 endpoints, in-process through Django's WSGI handler: whatever
it sends, no request gets a 500. No worker runs, so a valid generation request ends in a 503."""
from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.helpers import make_key
from webapp.api.openapi import openapi_document

pytestmark = [pytest.mark.django_db]

schema = schemathesis.openapi.from_dict(openapi_document(server_url="http://localhost/v1"))
schema.app = get_wsgi_application()


@pytest.fixture
def bearer(redis_server, no_enqueue, settings, project, bob):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    settings.API_QUEUE_TIMEOUT = 0.2
    settings.API_REQUESTS_PER_MINUTE = 100_000
    # As Django's test client does: the handler must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {make_key(bob, project).secret}"}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_request_gets_a_server_error(case, bearer):
    response = case.call(headers=bearer)
    # A valid request waits for a worker that never comes: the documented 503, not a failure (the
    # multipart edits have few required fields, so schemathesis finds valid ones at once).
    # /embeddings answers its documented 503 too: the suite runs with no embedding model (ATELIER_EMBEDDING_MODEL="").
    documented = ("no_worker_available", "embeddings_unavailable")
    if not (response.status_code == 503 and response.json()["error"]["code"] in documented):
        case.validate_response(response, checks=[not_a_server_error])
    # Every answer is one of ours (so the request reached the endpoint), in OpenAI's shape when it is an error.
    if response.status_code >= 400:
        assert response.headers.get("content-type") == ["application/json"], (
            case.method, case.formatted_path, response.status_code, response.content[:300])
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] != "not_found" or case.operation.path in ("/models/{model}", "/images/{asset_id}/content")

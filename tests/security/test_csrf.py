"""CSRF on every POST: walking the URLconf, a logged-in member's POST without the token is
refused (403) everywhere but the /v1 API, which takes bearer keys and no cookies at all."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.helpers import url_patterns

pytestmark = pytest.mark.django_db

# No session, so nothing for a forged request to ride on: bearer keys only (issue #13).
TOKEN_AUTH_PREFIX = "/v1/"


def _posts() -> list[tuple[str, list[str]]]:
    return [(name, list(converters)) for name, _, converters in url_patterns() if not name.startswith("admin:")]


@pytest.mark.parametrize(("name", "kwargs"), _posts())
def test_a_post_without_the_token_is_refused(name, kwargs, world, alice):
    missing = [k for k in kwargs if k not in world]
    assert not missing, f"{name}: add an object for {missing} to the world fixture"
    url = reverse(name, kwargs={k: world[k] for k in kwargs})
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(url, {"text": "x", "name": "x", "title": "x"})
    if url.startswith(TOKEN_AUTH_PREFIX):
        # 401 where it writes, 405 (or the CSRF 403) where it only reads, 404 past the known paths
        assert response.status_code in {401, 403, 404, 405}, f"POST {url}: a session must not reach the API"
    else:
        assert response.status_code == 403, f"POST {url} without a CSRF token answered {response.status_code}"


def test_the_same_post_with_the_token_passes_the_check(project, alice, conversation):
    """The walk above would pass if every POST failed for another reason: one with the token must not."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(reverse("workspaces:project_detail", kwargs={"project_id": project.pk}))
    token = client.cookies["csrftoken"].value
    url = reverse("chat:conversation_rename", kwargs={"project_id": project.pk, "conversation_id": conversation.pk})
    assert client.post(url, {"title": "Renamed"}).status_code == 403
    assert client.post(url, {"title": "Renamed"}, HTTP_X_CSRFTOKEN=token).status_code in {200, 302}
    conversation.refresh_from_db()
    assert conversation.title == "Renamed"

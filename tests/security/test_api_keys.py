"""API keys: the new secret never rests in the session store (finding 7), keys die with the
membership that made them (finding 6), and one member cannot mint keys without end (finding 2)."""
from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from webapp.api.models import ApiKey, secret_hash

pytestmark = [pytest.mark.django_db]


def _keys_url(project) -> str:
    return reverse("api:keys", kwargs={"project_id": project.pk})


def test_the_new_secret_is_shown_by_the_post_that_made_it_and_never_stored_in_the_session(client_for, project, bob):
    client = client_for(bob)
    response = client.post(_keys_url(project), {"name": "notebook"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(project=project, user=bob)
    secret = response.context["new_secret"]["secret"]
    assert secret_hash(secret) == key.secret_hash and secret.encode() in response.content
    # The attack: read the session store (a database dump, a cache, a backup) before the page renders again.
    for session in Session.objects.all():
        assert secret not in str(session.get_decoded())
    assert secret.encode() not in client.get(_keys_url(project)).content

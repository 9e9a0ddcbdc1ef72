from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok(client):
    response = client.get(reverse("core:healthz"))
    assert response.json() == {"status": "ok"}


def test_static_htmx_is_served_locally(client):
    response = client.get("/static/django_htmx/htmx-2.min.js")
    assert response.status_code == 200

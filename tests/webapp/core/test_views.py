from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_static_htmx_is_served_locally(client):
    response = client.get("/static/django_htmx/htmx-2.min.js")
    assert response.status_code == 200

"""API fixtures: keys for the personas, and a client that sends a bearer key."""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from webapp.api import services
from webapp.workspaces.models import Membership


def make_key(user: Any, project: Any, name: str = "script", **kwargs: Any) -> services.NewKey:
    actor = Membership.objects.get(team_id=project.team_id, user=user)
    return services.key_create(actor=actor, project=project, name=name, **kwargs)


class ApiClient:
    """Django's test client with ``Authorization: Bearer <secret>`` on every request."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **kwargs: Any):
        return self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None, content_type: str = "application/json",
             **kwargs: Any):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type=content_type,
                                headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def bob_key(project, bob):
    return make_key(bob, project, name="bob's notebook")


@pytest.fixture
def carol_key(project, carol):
    return make_key(carol, project, name="carol's viewer key")


@pytest.fixture
def bob_api(bob_key, redis_server) -> ApiClient:
    return ApiClient(bob_key.secret)


@pytest.fixture
def no_enqueue(monkeypatch):
    """Jobs are recorded but no task is sent: no worker will ever take them."""
    from webapp.core import jobs

    sent: list[Any] = []
    monkeypatch.setattr(jobs, "task_send", lambda name, **kwargs: sent.append({"name": name, **kwargs}))
    return sent

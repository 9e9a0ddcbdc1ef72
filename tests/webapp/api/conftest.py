"""API fixtures: keys for the personas, and a client that sends a bearer key (helpers in ``tests.helpers``)."""
from __future__ import annotations

import pytest

from tests.helpers import ApiClient, make_key


@pytest.fixture
def bob_key(project, bob):
    return make_key(bob, project, name="bob's notebook")


@pytest.fixture
def carol_key(project, carol):
    return make_key(carol, project, name="carol's viewer key")


@pytest.fixture
def bob_api(bob_key, redis_server) -> ApiClient:
    return ApiClient(bob_key.secret)

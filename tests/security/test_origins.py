"""Foreign websocket origins are refused: scheme, host and port all count; null and none never pass."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.helpers import (
    chat_socket_path,
    reviews_socket_path,
    session_client,
    socket_for,
    studio_socket_path,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_server")]

FOREIGN = [
    "http://localhost:3000",  # another local web app: same host, another port
    "https://localhost:8000",  # another scheme
    "http://localhost",  # the default port is a port too
    "https://evil.example",
    "null",  # sandboxed frames and file: pages
]


def _paths(conversation, project) -> list[str]:
    return [chat_socket_path(conversation), studio_socket_path(project), reviews_socket_path(project)]


@pytest.mark.parametrize("origin", FOREIGN)
async def test_a_foreign_origin_cannot_open_any_socket(origin, conversation, project, bob):
    client = await sync_to_async(session_client)(bob)
    for path in _paths(conversation, project):
        socket = socket_for(path, client, origin=origin)
        connected, _ = await socket.connect(timeout=5)
        assert not connected, f"{origin} opened {path}"


async def test_a_missing_origin_is_refused(conversation, project, bob):
    client = await sync_to_async(session_client)(bob)
    for path in _paths(conversation, project):
        connected, _ = await socket_for(path, client, origin=None).connect(timeout=5)
        assert not connected


async def test_a_wildcard_setting_still_refuses_null_and_missing(conversation, bob, settings):
    settings.ATELIER_ORIGINS = ["*", "http://localhost:8000"]
    client = await sync_to_async(session_client)(bob)
    path = chat_socket_path(conversation)
    for origin in ("null", None, "http://localhost:3000"):
        connected, _ = await socket_for(path, client, origin=origin).connect(timeout=5)
        assert not connected


async def test_the_sites_own_origin_opens_the_socket(conversation, bob):
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(chat_socket_path(conversation), client)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await socket.disconnect()


def test_origins_derive_from_where_atelier_listens(monkeypatch):
    import importlib

    import webapp.settings as s

    monkeypatch.setenv("ATELIER_HOST", "10.1.2.3")
    monkeypatch.setenv("ATELIER_PORT", "9000")
    monkeypatch.delenv("CSRF_TRUSTED_ORIGINS", raising=False)
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    try:
        fresh = importlib.reload(s)
        assert "http://10.1.2.3:9000" in fresh.ATELIER_ORIGINS
        assert fresh.CSRF_TRUSTED_ORIGINS == fresh.ATELIER_ORIGINS
        assert "10.1.2.3" in fresh.ALLOWED_HOSTS
        monkeypatch.setenv("CSRF_TRUSTED_ORIGINS", "https://atelier.example.com")
        assert importlib.reload(s).ATELIER_ORIGINS == ["https://atelier.example.com"]
    finally:
        monkeypatch.undo()
        importlib.reload(s)

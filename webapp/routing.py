"""Websocket routes of every app, collected in one list."""
from __future__ import annotations

websocket_urlpatterns: list = []

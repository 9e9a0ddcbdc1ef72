"""Websocket routes of every app, collected in one list."""
from __future__ import annotations

from webapp.activity.routing import websocket_urlpatterns as activity_websockets
from webapp.chat.routing import websocket_urlpatterns as chat_websockets
from webapp.reviews.routing import websocket_urlpatterns as reviews_websockets
from webapp.studio.routing import websocket_urlpatterns as studio_websockets

websocket_urlpatterns: list = [*chat_websockets, *studio_websockets, *reviews_websockets]
websocket_urlpatterns += activity_websockets  # the project's live activity (issue 21)

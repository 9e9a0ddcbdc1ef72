from __future__ import annotations

from django.urls import path

from webapp.reviews import consumers

websocket_urlpatterns = [
    path("ws/projects/<int:project_id>/reviews/", consumers.InboxConsumer.as_asgi()),
]

from __future__ import annotations

from django.urls import path

from webapp.activity import consumers

websocket_urlpatterns = [
    path("ws/projects/<int:project_id>/activity/", consumers.ActivityConsumer.as_asgi()),
]

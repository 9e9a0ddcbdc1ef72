from __future__ import annotations

from django.urls import path

from webapp.studio import consumers

websocket_urlpatterns = [
    path("ws/projects/<int:project_id>/studio/", consumers.StudioConsumer.as_asgi()),
]

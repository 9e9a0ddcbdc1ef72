from __future__ import annotations

from django.urls import path

from webapp.chat import consumers

websocket_urlpatterns = [
    path("ws/projects/<int:project_id>/chat/<int:conversation_id>/", consumers.ConversationConsumer.as_asgi()),
]

from __future__ import annotations

from django.urls import path

from webapp.chat import views

app_name = "chat"
conversation = "projects/<int:project_id>/chat/<int:conversation_id>/"
message = "projects/<int:project_id>/chat/messages/<int:message_id>/"
urlpatterns = [
    path("projects/<int:project_id>/chat/", views.index, name="index"),
    path(conversation, views.conversation, name="conversation"),
    path(f"{conversation}send/", views.conversation_send, name="conversation_send"),
    path(f"{conversation}settings/", views.conversation_settings, name="conversation_settings"),
    path(f"{conversation}rename/", views.conversation_rename, name="conversation_rename"),
    path(f"{conversation}delete/", views.conversation_delete, name="conversation_delete"),
    path(message, views.message_detail, name="message"),
    path(f"{message}regenerate/", views.message_regenerate, name="message_regenerate"),
    path(f"{message}edit/", views.message_edit, name="message_edit"),
    path(f"{message}stop/", views.message_stop, name="message_stop"),
]

from __future__ import annotations

from django.contrib import admin

from webapp.chat.models import Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "project", "created_by", "updated_at")
    search_fields = ("title",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "status", "model_name", "created_at")
    list_filter = ("role", "status")
    raw_id_fields = ("conversation", "parent", "prompt")

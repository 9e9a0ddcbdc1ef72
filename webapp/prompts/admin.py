from __future__ import annotations

from django.contrib import admin

from webapp.prompts.models import PromptRecord


@admin.register(PromptRecord)
class PromptRecordAdmin(admin.ModelAdmin):
    list_display = ("text", "kind", "project", "author", "created_at")
    list_filter = ("kind",)
    search_fields = ("text",)

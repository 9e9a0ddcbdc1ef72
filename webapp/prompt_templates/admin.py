from __future__ import annotations

from django.contrib import admin

from webapp.prompt_templates.models import PromptTemplate, TemplateUse, TemplateVersion


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("command", "name", "kind", "project", "shared_with_team", "updated_at")
    list_filter = ("kind", "shared_with_team")
    search_fields = ("command", "name")


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ("template", "number", "saved_by", "saved_at", "note")
    readonly_fields = ("template", "number", "body", "settings", "note", "saved_by", "saved_at")


@admin.register(TemplateUse)
class TemplateUseAdmin(admin.ModelAdmin):
    list_display = ("command", "version_number", "output_kind", "output_id", "user", "created_at")
    list_filter = ("output_kind",)

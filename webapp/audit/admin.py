from __future__ import annotations

from typing import Any

from django.contrib import admin

from webapp.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the admin may look, never change or delete."""

    list_display = ("at", "actor_name", "action", "team_id", "project_id", "object_kind", "object_id")
    list_filter = ("action", "object_kind")

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

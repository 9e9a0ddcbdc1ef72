from __future__ import annotations

from django.contrib import admin

from webapp.studio.models import Asset, Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "author", "status", "model_name", "created_at", "finished_at")
    list_filter = ("status", "model_name")
    readonly_fields = ("params", "reason", "worker", "worker_host", "code_version", "model_revision")


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "job", "author", "model_name", "seed", "created_at")
    list_filter = ("model_name",)
    readonly_fields = ("file", "thumbnail", "params", "sha256")

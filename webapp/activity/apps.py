from __future__ import annotations

from django.apps import AppConfig


class ActivityConfig(AppConfig):
    """A project's activity page: reads the usage records, the audit trail and the job tables (no model, no
    write). It sits above ``reviews``, the highest app it reads (studio's images for thumbnails)."""

    name = "webapp.activity"
    label = "activity"

from __future__ import annotations

from django.apps import AppConfig


class ActivityConfig(AppConfig):
    """A project's activity page: reads the usage records, the audit trail and the job tables (no model, no
    write). It sits above ``reviews``, the highest app it reads (studio's images for thumbnails)."""

    name = "webapp.activity"
    label = "activity"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from webapp.activity.signals import audit_entry_saved
        from webapp.audit.models import AuditEntry

        post_save.connect(audit_entry_saved, sender=AuditEntry, dispatch_uid="activity.audit_entry_saved")

"""The audit trail: one append-only table of who did what to which asset, and when.

Entries keep plain ids and names rather than foreign keys, so deleting a user,
a project or a team leaves their history readable, and no cascade ever has to
delete an entry. Nothing in the app may change or remove an entry: the model
and its querysets refuse to.
"""
from __future__ import annotations

from typing import Any

from django.db import models


class AuditImmutableError(Exception):
    """Raised on any attempt to change or delete an audit entry."""


class AuditAction(models.TextChoices):
    GENERATED = "generated", "Generated"
    REVIEW_REQUESTED = "review_requested", "Asked for review"
    VERDICT = "verdict", "Gave a verdict"
    COMMENTED = "commented", "Commented"
    REVIEW_WITHDRAWN = "review_withdrawn", "Withdrew a review"
    DOWNLOADED = "downloaded", "Downloaded"
    EXPORTED = "exported", "Exported"
    TEMPLATE_PUBLISHED = "template_published", "Published a template version"


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AuditImmutableError("Audit entries cannot be changed.")

    def delete(self) -> Any:
        raise AuditImmutableError("Audit entries cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AuditImmutableError("Audit entries cannot be changed.")

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:
        raise AuditImmutableError("Audit entries cannot be changed.")


class AuditEntry(models.Model):
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_name = models.CharField(max_length=150, blank=True)
    team_id = models.BigIntegerField(db_index=True)
    project_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=30, choices=AuditAction.choices)
    object_kind = models.CharField(max_length=30, blank=True)
    object_id = models.BigIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["team_id", "-at"], name="audit_team_recent"),
            # The project activity feed: a project's entries, newest first.
            models.Index(fields=["project_id", "-at"], name="audit_project_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name or '(system)'} {self.action} {self.object_kind} {self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditImmutableError("Audit entries cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AuditImmutableError("Audit entries cannot be deleted.")

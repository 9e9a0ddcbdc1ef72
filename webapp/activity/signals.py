"""The live feed hears audit entries too: an entry of a kind the feed shows, once committed, goes to its
project's activity group (the consumer renders it from the database, as it does a finished job's record)."""
from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from webapp.audit.models import AuditEntry
from webapp.usage.events import activity_group_name


def _publish(project_id: int, entry_id: int) -> None:
    from webapp.core.events import get_publisher

    get_publisher().publish(activity_group_name(project_id=project_id), {"type": "activity.entry", "entry_id": entry_id})


def audit_entry_saved(sender: type[AuditEntry], instance: AuditEntry, created: bool, **kwargs: Any) -> None:
    from webapp.activity.selectors import AUDIT_KINDS

    if created and instance.project_id is not None and instance.action in AUDIT_KINDS:
        transaction.on_commit(partial(_publish, instance.project_id, instance.pk))

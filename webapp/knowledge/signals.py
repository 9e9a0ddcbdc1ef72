"""A document's stored file goes with its row, however the row goes (deleted, replaced by a new
version, or with its project), once the deleting transaction commits."""
from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from webapp.knowledge.models import Document

logger = logging.getLogger(__name__)


def _delete_file(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:
        logger.exception("could not delete the file %s of a deleted document", name)


@receiver(post_delete, sender=Document, dispatch_uid="knowledge_document_file")
def document_file_delete(sender: Any, instance: Document, **kwargs: Any) -> None:
    if instance.file:
        transaction.on_commit(partial(_delete_file, instance.file))

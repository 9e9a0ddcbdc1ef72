"""Celery entry points of knowledge."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from webapp.core.jobs import job_fail_logged
from webapp.knowledge import services


@shared_task(name="knowledge.index_document", bind=True, acks_late=True, ignore_result=True)
def index_document(self: Any, document_id: int) -> None:
    """Index one document. An unexpected error ends it failed with a generic reason and an error id."""
    try:
        services.document_index(document_id=document_id, worker=self.request.hostname or "")
    except Exception:
        job_fail_logged(kind=services.INDEX_JOB, job_id=document_id, what="Indexing the document")

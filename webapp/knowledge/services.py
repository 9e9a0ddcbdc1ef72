"""Writes of knowledge: adding, replacing and deleting documents, and indexing them (a job kind).

The web process stores the file and enqueues its indexing (queue ``default``,
which every text worker serves); a worker parses and chunks it, and stores the
passages in the same transaction that ends the job "done". A file that cannot
be indexed ends the job "failed" with the file's name and the reason; nothing
of it is stored, so search never sees half a document.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from webapp.core import jobs
from webapp.core.jobs import JobKind, JobStatus
from webapp.knowledge.chunking import chunk
from webapp.knowledge.models import Document, Passage
from webapp.knowledge.parsing import TEXT_KINDS, DocumentError, Limits, decode_text, kind_for, parse
from webapp.knowledge.search import embedding_model, passage_vectors
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_require

logger = logging.getLogger(__name__)

# The tab polls a live document's row, so the kind publishes nothing.
INDEX_JOB = JobKind(name="knowledge.index", model=Document, task_name="knowledge.index_document", queue="default")


def _limits() -> Limits:
    return Limits(max_pages=int(settings.KNOWLEDGE_MAX_PDF_PAGES), max_objects=int(settings.KNOWLEDGE_MAX_PDF_OBJECTS))


def _read_upload(upload: Any) -> bytes:
    """The bytes of an upload, refusing one over ``MAX_DOCUMENT_BYTES`` without reading past the limit."""
    limit = int(settings.MAX_DOCUMENT_BYTES)
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise ValidationError({"file": f"The file is {size} bytes; documents may be at most {limit} bytes."})
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ValidationError({"file": f"The file is over {limit} bytes, the most a document may be."})
    if not data:
        raise ValidationError({"file": "The file is empty."})
    return bytes(data)


def _check(filename: str, data: bytes) -> str:
    """The file's kind, after the checks that are cheap enough for the web process (its name, and
    for text its encoding); the worker checks the rest (PDF and .docx structure)."""
    try:
        kind = kind_for(filename)
        if kind in TEXT_KINDS:
            decode_text(data)
    except DocumentError as error:
        raise ValidationError({"file": f"{filename}: {error}"}) from None
    return kind


def _store(*, actor: Membership, project: Any, upload: Any, title: str, replaces: Document | None) -> Document:
    filename = (getattr(upload, "name", "") or "document").rsplit("/", 1)[-1][:255]
    data = _read_upload(upload)
    kind = _check(filename, data)
    title = (title or "").strip() or (replaces.title if replaces else filename.rsplit(".", 1)[0])
    name = default_storage.save(f"knowledge/{project.pk}/{uuid.uuid4().hex}.{kind}", ContentFile(data))
    try:
        with transaction.atomic():
            document = Document.objects.create(
                project=project, title=title[:200], filename=filename, kind=kind, byte_size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), file=name, added_by=actor.user,
                version=(replaces.version + 1) if replaces else 1, replaces=replaces,
            )
            jobs.job_enqueue(kind=INDEX_JOB, job_id=document.pk)
    except Exception:
        default_storage.delete(name)
        raise
    return document


def document_add(*, actor: Membership, project: Any, upload: Any, title: str = "") -> Document:
    """Store ``upload`` as a new document of ``project`` and enqueue its indexing after commit.

    ``knowledge.add``: members and above. ValidationError on ``file`` (too big, empty, a kind Atelier
    does not read, binary or not UTF-8 text) and nothing is stored.
    """
    membership_require(actor=actor, action="knowledge.add", project=project)
    return _store(actor=actor, project=project, upload=upload, title=title, replaces=None)


def document_replace(*, actor: Membership, document: Document, upload: Any, title: str = "") -> Document:
    """A new version of ``document`` from ``upload``: indexed as a new row; the old version and its
    passages go when the new one is indexed (they stay if it fails or is stopped)."""
    membership_require(actor=actor, action="knowledge.add", project=document.project)
    return _store(actor=actor, project=document.project, upload=upload, title=title, replaces=document)


def document_delete(*, actor: Membership, document: Document) -> None:
    """Delete ``document`` with its passages and file; a live indexing is stopped first.

    ``knowledge.delete``: owners and admins any, members their own.
    """
    membership_require(actor=actor, action="knowledge.delete", project=document.project,
                       owner_id=document.added_by_id)
    if document.is_live:
        jobs.job_stop(kind=INDEX_JOB, job=document, reason="The document was deleted.")
    Document.objects.filter(pk=document.pk).delete()  # the file goes after commit (signals.py)


def document_stop(*, actor: Membership, document: Document) -> str:
    """Stop indexing ``document`` (``knowledge.delete``); returns its status now."""
    membership_require(actor=actor, action="knowledge.delete", project=document.project,
                       owner_id=document.added_by_id)
    return jobs.job_stop(kind=INDEX_JOB, job=document, reason="Stopped.")


class _Progress:
    def __init__(self) -> None:
        self.pages_done = 0
        self.pages_total = 0

    def page(self, done: int, total: int) -> None:
        self.pages_done, self.pages_total = done, total

    def values(self) -> dict[str, Any]:
        return {"pages_done": self.pages_done, "pages_total": self.pages_total}


def document_index(*, document_id: int, worker: str = "") -> Document | None:
    """Index a queued document on this worker; None when it is not queued any more (or was deleted meanwhile).

    Parses the stored file, chunks it, and stores the passages in the transaction that ends the job
    "done" (deleting the version it replaces). A DocumentError ends it "failed" with the file's name
    and the reason; a stop ends it "stopped"; either way no passage is stored.
    """
    if not jobs.job_claim(kind=INDEX_JOB, job_id=document_id, worker=worker):
        return None
    document = Document.objects.select_related("project").get(pk=document_id)
    progress = _Progress()
    with jobs.job_running(kind=INDEX_JOB, job=document, progress=progress.values) as run:
        try:
            with default_storage.open(document.file, "rb") as stored:
                data = stored.read()
            blocks = parse(filename=document.filename, data=data, limits=_limits(), on_page=progress.page,
                           should_stop=run.should_stop)
            chunks = [] if run.should_stop() else chunk(
                blocks, target=int(settings.KNOWLEDGE_CHUNK_TOKENS), overlap=int(settings.KNOWLEDGE_CHUNK_OVERLAP))
            vectors = [] if run.should_stop() else passage_vectors([_embedded_text(piece) for piece in chunks])
        except DocumentError as error:
            jobs.job_finish(kind=INDEX_JOB, job_id=document.pk, status=JobStatus.FAILED,
                            reason=f"{document.filename}: {error}", values=progress.values())
            return _fresh(document)
        if run.should_stop():
            jobs.job_finish(kind=INDEX_JOB, job_id=document.pk, status=JobStatus.STOPPED,
                            reason=run.stop_reason or "Stopped.", values=progress.values())
            return _fresh(document)
        _store_passages(document, chunks, progress, vectors)
    return _fresh(document)


def _embedded_text(piece: Any) -> str:
    return f"{piece.heading}\n{piece.text}" if piece.heading else str(piece.text)


def _store_passages(document: Document, chunks: list[Any], progress: _Progress,
                    vectors: list[bytes] | None = None) -> None:
    model = embedding_model() if vectors else ""
    with transaction.atomic():
        values = {**progress.values(), "passages_count": len(chunks)}
        if not jobs.job_finish(kind=INDEX_JOB, job_id=document.pk, status=JobStatus.DONE, values=values):
            return  # stopped, swept or deleted meanwhile: nothing is stored
        Passage.objects.bulk_create(
            Passage(document=document, project_id=document.project_id, ordinal=number, page=piece.page,
                    heading=piece.heading[:300], text=piece.text, tokens=piece.tokens,
                    embedding=vectors[number] if vectors else None, embedding_model=model)
            for number, piece in enumerate(chunks)
        )
        if document.replaces_id is not None:
            old = Document.objects.filter(pk=document.replaces_id, project_id=document.project_id).first()
            if old is not None:
                old.delete()  # its passages cascade; its file goes after commit (signals.py)


def _fresh(document: Document) -> Document | None:
    """The row as stored now; None when it was deleted while it was being indexed."""
    return Document.objects.filter(pk=document.pk).first()

"""Documents a team adds to a project, and the passages they are split into for search."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.core.models import JobModel


class Document(JobModel):
    """One uploaded file of a project; indexing it is a job of the one lifecycle (``webapp.core.jobs``).

    A new version of a document is a new row pointing at the one it ``replaces``: the old row and
    its passages stay searchable until the new one is indexed, and go in the same transaction
    (a failed or stopped replacement leaves the old version as it was).
    """

    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=200)
    filename = models.CharField(max_length=255)
    kind = models.CharField(max_length=10)  # the parser: txt, md, html, pdf, docx
    byte_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    file = models.CharField(max_length=255)  # a name in the default storage
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    version = models.PositiveIntegerField(default=1)
    replaces = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    pages_done = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=0)
    passages_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.title} v{self.version} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("knowledge:document", kwargs={"project_id": self.project_id, "document_id": self.pk})


class Passage(models.Model):
    """A stretch of a document's text (about ``KNOWLEDGE_CHUNK_TOKENS`` tokens), with where it came from."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)  # 1-based; None where the format has no pages
    heading = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    tokens = models.PositiveIntegerField(default=0)
    # The passage's unit vector (float32 bytes) from ``embedding_model``; empty when dense search was off.
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="passage_ordinal_unique")]

    def __str__(self) -> str:
        return f"passage {self.ordinal} of document {self.document_id}"

from __future__ import annotations

from django.conf import settings
from django.db import models


class PromptKind(models.TextChoices):
    CHAT = "chat", "Chat"
    IMAGE = "image", "Image"


class PromptSource(models.TextChoices):
    WEB = "web", "Browser"
    API = "api", "API"


class PromptRecord(models.Model):
    """One prompt somebody sent in a project, with the parameters it ran with.

    Chat and the studio both write here; the history page reads it, and
    "reuse" fills the chat composer or the studio form from ``params``.
    """

    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="prompts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    kind = models.CharField(max_length=10, choices=PromptKind.choices)
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    # Where the prompt came from; for the API, ``source_label`` names the key.
    source = models.CharField(max_length=10, choices=PromptSource.choices, default=PromptSource.WEB)
    source_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="prompt_project_recent")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:40]}"

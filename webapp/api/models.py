"""API keys, and the text jobs that API requests become.

A key acts as its user within one project. Only the SHA-256 of its secret is
stored; the secret is shown once, when the key is made. Whether a key still
works is decided on every request (``selectors.key_authenticate``), never
cached: revoked, expired, the user gone from the team, or a role too low.
"""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from webapp.core.models import TextJobModel


class TextKind(models.TextChoices):
    """Which endpoint made a text job: /v1/chat/completions or /v1/completions."""

    CHAT = "chat", "Chat completion"
    COMPLETION = "completion", "Completion"


def secret_hash(secret: str) -> str:
    """SHA-256 of a key's secret: the secret has 256 bits of entropy, so a slow hash adds nothing."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class ApiKey(models.Model):
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters of the secret, shown in lists to recognise a key.
    prefix = models.CharField(max_length=20)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    request_count = models.PositiveBigIntegerField(default=0)
    token_count = models.PositiveBigIntegerField(default=0)
    image_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "user"], name="api_key_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def get_absolute_url(self) -> str:
        return reverse("api:keys", kwargs={"project_id": self.project_id})

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def label(self) -> str:
        """How the prompt history and the gallery name the key."""
        return f"API key “{self.name}” ({self.prefix}…)"


class TextJob(TextJobModel):
    """One choice of one text request made through the API: a job on the ``text`` queue.

    A request with ``n`` choices makes ``n`` jobs sharing ``call_id``; each
    streams its chunks into its own Redis log (``webapp.api.stream``), which
    the request's view reads.
    """

    key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, related_name="text_jobs")
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="api_text_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    prompt_record = models.ForeignKey(
        "prompts.PromptRecord", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    call_id = models.CharField(max_length=64, db_index=True)
    index = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=TextKind.choices)
    # The engine request: TextRequest's messages, system prompt and DecodingParams.
    model_name = models.CharField(max_length=100)
    messages = models.JSONField(default=list)
    params = models.JSONField(default=dict)

    # The field the engine refused (its own name, e.g. "max_new_tokens"), for a 400 naming it.
    reason_field = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="api_textjob_liveness")]

    def __str__(self) -> str:
        return f"text job {self.pk} ({self.status})"


class ImageCall(models.Model):
    """The studio job an image request made, so its images are fetchable with that key only."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="image_calls")
    job = models.OneToOneField("studio.Job", on_delete=models.CASCADE, related_name="api_call")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"image call {self.pk} (job {self.job_id})"

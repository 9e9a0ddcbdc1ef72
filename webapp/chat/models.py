"""Conversations and their messages.

Messages form a tree: each one points at its parent. Regenerating a reply
adds an assistant sibling; editing and resending a user message adds a user
sibling. The page shows one path from a root to a leaf.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.core.jobs import JobStatus
from webapp.core.models import TextJobModel


class Conversation(models.Model):
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, default="New conversation")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Moves on every prompt, so the list shows the most recently active first.
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # The conversation's settings; a message may override them when it is sent.
    model_name = models.CharField(max_length=100, blank=True)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    # "Use project knowledge": replies read the best passages of the project's documents (webapp.knowledge).
    use_knowledge = models.BooleanField(default=False)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("chat:conversation", kwargs={"project_id": self.project_id, "conversation_id": self.pk})

    @property
    def group_name(self) -> str:
        """The channel-layer group that carries this conversation's events."""
        return f"chat_conversation_{self.pk}"


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class Message(TextJobModel):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    role = models.CharField(max_length=10, choices=Role.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # ``text`` (TextJobModel's: a prompt's, or a reply's) as sanitized HTML, stored when the message is
    # written or the reply ends, so a page view never re-renders markdown.
    html = models.TextField(blank=True, editable=False)
    # An assistant reply is a job (see webapp.core.jobs); a user's message is born "done".
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.DONE, db_index=True)

    # What an assistant reply ran with (a snapshot: later settings changes don't touch it).
    model_name = models.CharField(max_length=100, blank=True)
    system_prompt = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    prompt = models.ForeignKey("prompts.PromptRecord", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # A reply that used project knowledge: snapshots of the passages it read, numbered as its citations
    # (webapp.knowledge.context); [] when none was relevant ("no sources"); None when it used none.
    knowledge = models.JSONField(null=True, blank=True)

    # Usage and timings, filled when the reply ends (TextJobModel's, and these).
    elapsed = models.FloatField(null=True, blank=True)
    # The text engine's batch: the most and the mean replies (rows) decoded with this one per step.
    batch_max = models.PositiveSmallIntegerField(null=True, blank=True)
    batch_mean = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="chat_message_liveness")]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}: {self.text[:40]}"

"""Prompt templates, their immutable versions, and the record of every use.

A template lives in a project and may be shared with every project of its
team. Its body and settings are versioned: saving a change adds a
``TemplateVersion``; exactly one version is published (the one ``/`` and the
studio picker offer). Chat and studio, which sit above this app, record what
they made from a version in ``TemplateUse`` (the kind and id of the output,
no foreign key upwards).
"""
from __future__ import annotations

from django.conf import settings as django_settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

COMMAND_PATTERN = r"^[a-z0-9-]+\Z"
command_validator = RegexValidator(COMMAND_PATTERN, "Use lowercase letters, digits and dashes, as in summarize-notes.")


class TemplateKind(models.TextChoices):
    CHAT = "chat", "Chat"
    IMAGE = "image", "Image"


class PromptTemplate(models.Model):
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="prompt_templates")
    shared_with_team = models.BooleanField(
        default=False, help_text="Offer this template in every project of the team, not only this one."
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    command = models.CharField(max_length=40, validators=[command_validator], help_text="Typed after / in the chat.")
    kind = models.CharField(max_length=10, choices=TemplateKind.choices)
    published_version = models.ForeignKey(
        "TemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["command", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "command"], name="unique_template_command")]

    def __str__(self) -> str:
        return f"/{self.command}"

    def get_absolute_url(self) -> str:
        return reverse("prompt_templates:detail", kwargs={"project_id": self.project_id, "template_id": self.pk})


class TemplateVersion(models.Model):
    """One saved state of a template's body and settings. Never changed once written."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    # Chat: model, system, and any decoding parameter. Image: negative_prompt,
    # model, scheduler, steps, guidance_scale, width, height. Only pinned keys.
    settings = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True)
    saved_by = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    saved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="unique_template_version")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"

    def get_absolute_url(self, project_id: int | None = None) -> str:
        return reverse(
            "prompt_templates:version",
            kwargs={"project_id": project_id or self.template.project_id, "template_id": self.template_id,
                    "number": self.number},
        )

    @property
    def is_published(self) -> bool:
        return self.template.published_version_id == self.pk


class OutputKind(models.TextChoices):
    REPLY = "reply", "Chat reply"
    JOB = "job", "Image job"


class TemplateUse(models.Model):
    """A chat reply or an image job made from a template version, with the values filled in.

    The template's command and the version number are copied, so the
    lineage still reads right after the template is deleted.
    """

    version = models.ForeignKey(TemplateVersion, on_delete=models.SET_NULL, null=True, related_name="uses")
    project = models.ForeignKey("workspaces.Project", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(django_settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    command = models.CharField(max_length=40)
    version_number = models.PositiveIntegerField()
    values = models.JSONField(default=dict, blank=True)
    output_kind = models.CharField(max_length=10, choices=OutputKind.choices)
    output_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["output_kind", "output_id"], name="template_use_output")]

    def __str__(self) -> str:
        return f"/{self.command} v{self.version_number} -> {self.output_kind} {self.output_id}"

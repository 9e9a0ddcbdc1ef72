"""What each finished job used: one ``UsageRecord`` per job, written by the lifecycle's ``job_finished``."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Interface(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"


class UsageRecord(models.Model):
    """One finished job (done, stopped or failed) and what it used, of any kind.

    Written once, inside the transaction that ends the job. The key is a plain
    id with its name copied, since keys live in ``api``, above this app. Compute
    seconds are the job's time on a worker, a batched text step shared among its
    rows; queue seconds from creation to the claim (or to the end, if never
    claimed); bytes stored are the files the job left (images, an export's zip).
    """

    team = models.ForeignKey("workspaces.Team", on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("workspaces.Project", on_delete=models.SET_NULL, null=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    key_id = models.PositiveBigIntegerField(null=True, blank=True)
    key_name = models.CharField(max_length=100, blank=True)
    interface = models.CharField(max_length=3, choices=Interface.choices, default=Interface.WEB)
    kind = models.CharField(max_length=50)
    job_id = models.PositiveBigIntegerField()
    model_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    images = models.PositiveIntegerField(default=0)
    steps = models.PositiveIntegerField(default=0)
    pixels = models.PositiveBigIntegerField(default=0)
    compute_seconds = models.FloatField(default=0.0)
    queue_seconds = models.FloatField(default=0.0)
    bytes_stored = models.PositiveBigIntegerField(default=0)
    job_created_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "job_id"], name="usage_one_record_per_job")]
        indexes = [
            models.Index(fields=["team", "finished_at"], name="usage_team_time"),
            models.Index(fields=["project", "finished_at"], name="usage_project_time"),
            models.Index(fields=["team", "user", "finished_at"], name="usage_member_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.job_id}: {self.status}"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

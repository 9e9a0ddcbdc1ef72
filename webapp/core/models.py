"""The columns every job model carries, once (the lifecycle in ``webapp.core.jobs`` reads and writes them).

Abstract: each kind's table keeps its own columns, so no migration lives here.
"""
from __future__ import annotations

from django.db import models

from webapp.core.jobs import LIVE_STATUSES, JobStatus


class JobModel(models.Model):
    """A row that is a job: ``status`` and ``reason``, the worker that claimed it, and its times.

    Only ``webapp.core.jobs`` changes ``status`` (a test scans the code for any
    other writer). ``reason`` says why a job failed or was stopped, in words a
    user may read (internal failures: the generic message with an error id).
    The worker touches ``heartbeat_at`` while the job runs, so the sweep can
    tell a job whose worker died.
    """

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    reason = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_live(self) -> bool:
        """Queued or running: not ended yet."""
        return self.status in LIVE_STATUSES


class TextJobModel(JobModel):
    """A text job's row, for every kind (chat replies, the API's text jobs): the lifecycle's columns and what
    the one text runner (``webapp.core.textjobs``) stores when a decode ends: the text, why it ended, the
    token counts and the timings."""

    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=20, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True

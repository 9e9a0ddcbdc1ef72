"""Text jobs of the API: one more kind of job in the shared lifecycle (``webapp.core.jobs``).

The web side (``text_call_create``) records the prompt and one job per
choice and enqueues them on the ``text`` queue after commit. The worker
runs a job with the one text runner (``webapp.core.textjobs``), which
appends its events to the job's log (see ``webapp.api.stream``) and stores
how it ended. The view reads the log.
The lifecycle's ends (stopped in the queue, failed by the sweep or a lost
worker) reach the log through the kind's ``publish``.
"""
from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from webapp.api import stream
from webapp.api.models import ApiKey, TextJob, TextKind
from webapp.api.params import TextSpec
from webapp.api.services.keys import key_record_tokens
from webapp.core import jobs as lifecycle
from webapp.core import textjobs
from webapp.core.jobs import END_STATUSES, JobKind, JobStatus
from webapp.core.textjobs import TextJobKind, TextOutcome
from webapp.prompts.models import PromptKind, PromptSource
from webapp.prompts.services import prompt_record_create
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_require

if TYPE_CHECKING:
    from generation.text.types import TextRequest

logger = logging.getLogger(__name__)

SEED_MODULUS = 2**32


def _publish_end(job: TextJob) -> None:
    """The lifecycle ended a job that no worker is streaming: tell the view through the job's log."""
    if job.status in END_STATUSES:
        stream.TEXT_JOB_LOG.end(job, status=job.status, finish_reason=job.finish_reason or "error",
                                reason=job.reason, field=job.reason_field)


def _end_values(job: TextJob, status: str) -> dict[str, Any]:
    return {"finish_reason": "cancelled" if status == JobStatus.STOPPED else "error"}


TEXT_JOB = JobKind(
    name="api.text", model=TextJob, task_name="api.run_text_job", queue="text",
    publish=_publish_end, end_values=_end_values, owner="user_id",
)


def text_call_create(*, actor: Membership, key: ApiKey, spec: TextSpec, kind: str) -> list[TextJob]:
    """Record the prompt (marked as the API's, with the key) and ``spec.n`` queued jobs; enqueue after commit.

    ``actor`` is the key's user's membership. Raises PermissionDenied (the
    API answers 403) unless it may ``api.generate``. With a seed and
    ``n > 1``, choice ``i`` runs with ``seed + i``, so the choices differ
    and each is reproducible.
    """
    membership_require(actor=actor, action="api.generate", project=key.project)
    if kind not in TextKind.values:
        raise ValueError(f"unknown text job kind {kind!r}")
    call_id = uuid.uuid4().hex
    system = "\n\n".join(m["content"] for m in spec.messages if m["role"] == "system")
    with transaction.atomic():
        # The user's share of the ``text`` queue, counted with their chat replies (``QuotaExceeded``: a 429).
        lifecycle.job_quota_check_queue(
            queue=TEXT_JOB.queue, owner_id=actor.user.pk, limit=settings.MAX_LIVE_REPLIES, adding=spec.n,
            what="text jobs (chat replies and API completions) queued or running", lock=actor.user,
            admit=lifecycle.Admission(project=key.project, user_id=actor.user.pk),  # budgets
        )
        record = prompt_record_create(
            project=key.project, author=actor.user, kind=PromptKind.CHAT, text=spec.prompt_text,
            params={"model": spec.model, "system": system, **spec.params, "api": kind, "n": spec.n},
            model_name=spec.model, source=PromptSource.API, source_label=key.label,
        )
        created = []
        for index in range(spec.n):
            params = dict(spec.params)
            if params.get("seed") is not None and index:
                params["seed"] = (params["seed"] + index) % SEED_MODULUS
            job = TextJob.objects.create(
                key=key, project=key.project, user=actor.user, prompt_record=record,
                call_id=call_id, index=index, kind=kind, model_name=spec.model, messages=spec.messages,
                params=params,
            )
            lifecycle.job_enqueue(kind=TEXT_JOB, job_id=job.pk)
            created.append(job)
    return created


def text_jobs_stop(*, jobs: list[TextJob], reason: str = "The client went away.") -> None:
    """Stop the jobs: a queued one ends "stopped" at once, a running one within a token."""
    for job in jobs:
        lifecycle.job_stop(kind=TEXT_JOB, job=job, reason=reason)


def text_job_expire_unclaimed(*, job: TextJob, waited: float) -> bool:
    """Fail ``job`` if it is still queued (no worker took it); False when a worker has it by now."""
    return lifecycle.job_expire(kind=TEXT_JOB, job_id=job.pk, waited=waited)


def text_job_state(*, job_id: int) -> dict[str, Any] | None:
    row = (
        TextJob.objects.filter(pk=job_id)
        .values("status", "reason", "reason_field", "heartbeat_at", "text", "finish_reason",
                "prompt_tokens", "completion_tokens")
        .first()
    )
    return dict(row) if row is not None else None


# --- The worker side --------------------------------------------------------------


def _text_request(job: TextJob) -> TextRequest:
    from generation.text.types import ChatMessage, DecodingParams, TextRequest

    return TextRequest(
        messages=tuple(ChatMessage(role=m["role"], content=m["content"]) for m in job.messages),
        model=job.model_name,
        system=None,
        params=DecodingParams.from_dict(job.params),
    )


def _text_job_values(job: TextJob, outcome: TextOutcome) -> dict[str, Any]:
    return {"reason_field": outcome.error_field[:50]} if outcome.final is None else {}


def _text_job_end_fields(outcome: TextOutcome, values: dict[str, Any]) -> dict[str, Any]:
    """The end event the view answers from: status, finish reason, the refused field, usage."""
    return {
        "status": outcome.status, "finish_reason": values["finish_reason"], "reason": outcome.reason,
        "field": values.get("reason_field", ""), "prompt_tokens": values.get("prompt_tokens"),
        "completion_tokens": values.get("completion_tokens"),
    }


def _text_job_finished(job: TextJob, outcome: TextOutcome) -> None:
    if outcome.final is not None:
        key_record_tokens(key_id=job.key_id, tokens=outcome.final.prompt_tokens + outcome.final.completion_tokens)


TEXT_JOB_TEXT = TextJobKind(
    kind=TEXT_JOB, log=stream.TEXT_JOB_LOG, request=_text_request, what="The completion", values=_text_job_values,
    end_fields=_text_job_end_fields, finished=_text_job_finished, announce=True,
)


def text_job_run(*, job_id: int, worker: str = "") -> TextJob | None:
    """Run a queued job: claim it, decode while appending to its log, store the end (``core.textjobs``).

    Returns ``None`` when the job is not queued any more (stopped, expired,
    redelivered). The engine's ``ValidationError`` (a prompt too long for
    ``max_tokens``, say) ends the job failed with ``reason_field`` naming the
    engine's field, so the view can answer 400 naming the parameter.
    """
    job: TextJob | None = textjobs.text_job_run(spec=TEXT_JOB_TEXT, job_id=job_id, worker=worker)
    return job


def text_job_defer_unfair(*, job_id: int, deferred: int) -> bool:
    """True when the job's task went to the back of the queue: its user runs more text jobs than
    someone whose job waits (see ``lifecycle.job_defer_unfair``)."""
    return lifecycle.job_defer_unfair(kind=TEXT_JOB, job_id=job_id, deferred=deferred)

"""Text jobs of the API: created by the web side, run by a worker on the ``text`` queue.

The web side (``text_call_create``) records the prompt and one job per
choice and enqueues them after commit. The worker (``text_job_run``) claims
a job, runs the engine, appends its events to the job's log (see
``webapp.api.stream``) and stores how it ended. The view reads the log.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp.api import stream
from webapp.api.models import LIVE_STATUSES, JobStatus, TextJob, TextKind
from webapp.api.params import TextSpec
from webapp.api.services.keys import key_record_tokens
from webapp.prompts.models import PromptKind, PromptSource
from webapp.prompts.services import prompt_record_create

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
SEED_MODULUS = 2**32


def _stale_after() -> float:
    return float(getattr(settings, "CHAT_STALE_AFTER", 60))


def text_call_create(*, principal: Any, spec: TextSpec, kind: str) -> list[TextJob]:
    """Record the prompt (marked as the API's, with the key) and ``spec.n`` queued jobs; enqueue after commit.

    Raises a 403 ``ApiError`` unless the key's user may generate. With a
    seed and ``n > 1``, choice ``i`` runs with ``seed + i``, so the choices
    differ and each is reproducible.
    """
    principal.require_generate()
    if kind not in TextKind.values:
        raise ValueError(f"unknown text job kind {kind!r}")
    call_id = uuid.uuid4().hex
    system = "\n\n".join(m["content"] for m in spec.messages if m["role"] == "system")
    with transaction.atomic():
        record = prompt_record_create(
            project=principal.project, author=principal.user, kind=PromptKind.CHAT, text=spec.prompt_text,
            params={"model": spec.model, "system": system, **spec.params, "api": kind, "n": spec.n},
            model_name=spec.model, source=PromptSource.API, source_label=principal.key.label,
        )
        jobs = []
        for index in range(spec.n):
            params = dict(spec.params)
            if params.get("seed") is not None and index:
                params["seed"] = (params["seed"] + index) % SEED_MODULUS
            jobs.append(TextJob.objects.create(
                key=principal.key, project=principal.project, user=principal.user, prompt_record=record,
                call_id=call_id, index=index, kind=kind, model_name=spec.model, messages=spec.messages,
                params=params,
            ))
        transaction.on_commit(partial(_enqueue, job_ids=[job.pk for job in jobs]))
    return jobs


def _enqueue(*, job_ids: list[int]) -> None:
    from webapp.api.tasks import run_text_job

    for job_id in job_ids:
        try:
            run_text_job.apply_async(args=[job_id], queue="text")
        except Exception as exc:  # the broker is down: say so rather than stay queued for ever
            logger.exception("could not enqueue API text job %s", job_id)
            text_job_fail(job_id=job_id, reason=f"Could not reach the job queue: {exc}")


def text_jobs_stop(*, jobs: list[TextJob], reason: str = "The client went away.") -> None:
    """Stop the jobs: a queued one ends "stopped" at once, a running one within a token."""
    for job in jobs:
        stream.stop_request(job=job)
        if TextJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.STOPPED, reason=reason, finish_reason="cancelled", finished_at=timezone.now()
        ):
            stream.end_append(job=job, status=JobStatus.STOPPED, finish_reason="cancelled", reason=reason)


def text_job_expire_unclaimed(*, job: TextJob, waited: float) -> bool:
    """Fail ``job`` if it is still queued (no worker took it); False when a worker has it by now."""
    reason = f"No worker took the job within {waited:g} s."
    updated = TextJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.FAILED, reason=reason, finish_reason="error", finished_at=timezone.now()
    )
    if updated:
        stream.stop_request(job=job)  # a worker that gets it later must not run it
    return bool(updated)


def text_job_state(*, job_id: int) -> dict[str, Any] | None:
    row = (
        TextJob.objects.filter(pk=job_id)
        .values("status", "reason", "reason_field", "heartbeat_at", "text", "finish_reason",
                "prompt_tokens", "completion_tokens")
        .first()
    )
    return dict(row) if row is not None else None


def text_job_check_alive(*, job: TextJob) -> dict[str, Any] | None:
    """The job's row; a running job whose heartbeat stopped is failed first (its worker died)."""
    cutoff = timezone.now() - timedelta(seconds=_stale_after())
    if TextJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).exists():
        _fail(job=job, reason="The worker stopped responding; the text is incomplete.")
    return text_job_state(job_id=job.pk)


# --- The worker side --------------------------------------------------------------


def _text_request(job: TextJob) -> Any:
    from generation.text.types import ChatMessage, DecodingParams, TextRequest

    return TextRequest(
        messages=tuple(ChatMessage(role=m["role"], content=m["content"]) for m in job.messages),
        model=job.model_name,
        system=None,
        params=DecodingParams.from_dict(job.params),
    )


_FINISH_STATUS = {"stop": JobStatus.DONE, "length": JobStatus.DONE, "cancelled": JobStatus.STOPPED,
                  "error": JobStatus.FAILED}


def text_job_run(*, job_id: int, worker: str = "") -> TextJob | None:
    """Run a queued job: claim it, decode while appending to its log, store the end.

    Returns ``None`` when the job is not queued any more (stopped, expired,
    redelivered). The engine's ``ValidationError`` (a prompt too long for
    ``max_tokens``, say) ends the job failed with ``reason_field`` naming the
    engine's field, so the view can answer 400 naming the parameter.
    """
    from generation.errors import ValidationError as GenerationValidationError
    from generation.text.engine import generate_text
    from generation.text.types import TextFinal

    now = timezone.now()
    claimed = TextJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200]
    )
    if not claimed:
        return None
    job = TextJob.objects.get(pk=job_id)
    log = stream.JobLog(job=job)
    log.event("claimed")
    stop_flag = stream.StopWatch(job=job)
    lost = {"value": False}

    def should_stop() -> bool:
        return lost["value"] or stop_flag()

    final = None
    error, error_field = "", ""
    try:
        items = generate_text(_text_request(job), should_stop=should_stop)
        log.event("start")
        next_beat = timezone.now() + timedelta(seconds=HEARTBEAT_SECONDS)
        for item in items:
            if isinstance(item, TextFinal):
                final = item
                break
            log.write(item.text)
            if timezone.now() >= next_beat:
                next_beat = timezone.now() + timedelta(seconds=HEARTBEAT_SECONDS)
                log.flush()
                alive = TextJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now(), text=log.text
                )
                lost["value"] = not alive
    except GenerationValidationError as exc:
        error, error_field = f"{exc.field}: {exc.message}", exc.field
    except Exception as exc:
        logger.exception("API text job %s failed", job.pk)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        stop_flag.close()
    log.flush()
    values: dict[str, Any] = {"text": log.text, "finished_at": timezone.now(), "heartbeat_at": timezone.now()}
    if final is not None:
        status = _FINISH_STATUS.get(final.finish_reason, JobStatus.DONE)
        values.update(
            status=status, reason=final.error or "", finish_reason=final.finish_reason,
            prompt_tokens=final.prompt_tokens, completion_tokens=final.completion_tokens,
            time_to_first_token=final.time_to_first_token, tokens_per_second=final.tokens_per_second,
        )
    else:
        status = JobStatus.FAILED
        values.update(status=status, reason=error or "The engine ended without a result.",
                      reason_field=error_field[:50], finish_reason="error")
    try:
        updated = TextJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(**values)
        if updated:
            if final is not None:
                key_record_tokens(key_id=job.key_id, tokens=final.prompt_tokens + final.completion_tokens)
            log.event(
                "end", status=status, finish_reason=values["finish_reason"], reason=values["reason"],
                field=values.get("reason_field", ""), prompt_tokens=values.get("prompt_tokens"),
                completion_tokens=values.get("completion_tokens"),
            )
    finally:
        log.close()
    if not updated:
        return None  # swept or deleted meanwhile
    job.refresh_from_db()
    return job


def text_job_fail(*, job_id: int, reason: str) -> bool:
    """Fail a queued or running job, keeping its row's text; False when it had already ended."""
    job = TextJob.objects.filter(pk=job_id).first()
    return job is not None and _fail(job=job, reason=reason)


def _fail(*, job: TextJob, reason: str) -> bool:
    updated = TextJob.objects.filter(pk=job.pk, status__in=LIVE_STATUSES).update(
        status=JobStatus.FAILED, reason=reason[:2000], finish_reason="error", finished_at=timezone.now()
    )
    if updated:
        stream.end_append(job=job, status=JobStatus.FAILED, finish_reason="error", reason=reason, field="")
    return bool(updated)


def text_jobs_fail_stale(*, worker: str = "") -> int:
    """Fail running jobs without a heartbeat for ``CHAT_STALE_AFTER`` s, or claimed by ``worker``
    (a worker that starts runs nothing yet). Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=_stale_after())
    dead = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    if worker:
        dead |= Q(worker=worker)
    reason = "The worker stopped while running this job."
    return sum(_fail(job=job, reason=reason) for job in TextJob.objects.filter(dead, status=JobStatus.RUNNING))

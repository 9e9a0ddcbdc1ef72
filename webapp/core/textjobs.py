"""The one runner of text jobs, for every kind (chat replies, the API's completions, ...).

    claim -> decode under the lifecycle's heartbeat and stop watch, streaming
    through the kind's ``TextLog`` -> store the end and the result -> end event

A kind adds only what is its own (``TextJobKind``): how a row becomes an
engine request, which extra columns its result fills, what its end event
says, and what else happens when it finishes (an audit record, a key's usage).
Engine failures end "failed" with the generic message and an error id
(``webapp.core.errors``); the detail goes to the log. The engine's
``ValidationError`` (a prompt too long for ``max_new_tokens``, say) ends
"failed" with ``"<field>: <message>"``, which is the user's own to fix.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from webapp.core import jobs, pacing
from webapp.core.errors import error_logged, public_failure
from webapp.core.jobs import JobKind, JobStatus
from webapp.core.stream import TextLog

if TYPE_CHECKING:
    from generation.text.types import TextFinal, TextRequest

logger = logging.getLogger(__name__)

FINISH_STATUS = {
    "stop": JobStatus.DONE, "length": JobStatus.DONE, "cancelled": JobStatus.STOPPED, "error": JobStatus.FAILED,
}


@dataclass(frozen=True)
class TextOutcome:
    """How one decode ended, as the runner saw it."""

    text: str
    final: TextFinal | None
    status: str
    reason: str
    error_field: str = ""  # the engine's field that a ValidationError named


def _no_values(job: Any, outcome: TextOutcome) -> dict[str, Any]:
    return {}


def _status_only(outcome: TextOutcome, values: dict[str, Any]) -> dict[str, Any]:
    return {"status": outcome.status}


def _nothing(job: Any, outcome: TextOutcome) -> None:
    return None


@dataclass(frozen=True)
class TextJobKind:
    """What one kind of text job tells the runner.

    ``request(row)`` builds the engine's ``TextRequest``. ``values(row,
    outcome)`` returns the kind's own columns to store with the end, beside
    the shared ``text``, ``finish_reason`` and token counts.
    ``end_fields(outcome, values)`` are the end event's fields.
    ``finished(row, outcome)`` runs inside the transaction that stores the end
    (audit, usage). ``what`` names the job in the generic failure ("The
    reply"). ``load_first`` loads the model before claiming (a queued job is
    never swept, a running one is; the API's view instead waits for the
    ``claimed`` event, which ``announce`` logs, with ``start`` once the engine
    accepted the request).
    """

    kind: JobKind
    log: TextLog
    request: Callable[[Any], TextRequest]
    what: str
    values: Callable[[Any, TextOutcome], dict[str, Any]] = field(default=_no_values)
    end_fields: Callable[[TextOutcome, dict[str, Any]], dict[str, Any]] = field(default=_status_only)
    finished: Callable[[Any, TextOutcome], None] = field(default=_nothing)
    load_first: bool = False
    announce: bool = False


def _outcome(text: str, final: TextFinal | None, stop_reason: str, error: str, error_field: str) -> TextOutcome:
    if final is None:
        return TextOutcome(text, None, JobStatus.FAILED, error or "The engine ended without a result.", error_field)
    status = FINISH_STATUS.get(final.finish_reason, JobStatus.DONE)
    reason = final.error or ((stop_reason or "Stopped.") if status == JobStatus.STOPPED else "")
    return TextOutcome(text, final, status, reason)


def _shared_values(outcome: TextOutcome) -> dict[str, Any]:
    final = outcome.final
    if final is None:
        return {"text": outcome.text, "finish_reason": "error"}
    return {
        "text": outcome.text, "finish_reason": final.finish_reason, "prompt_tokens": final.prompt_tokens,
        "completion_tokens": final.completion_tokens, "time_to_first_token": final.time_to_first_token,
        "tokens_per_second": final.tokens_per_second,
    }


def _measured(outcome: TextOutcome) -> dict[str, Any]:
    """For ``job_finished``: the request's share of the engine's time, each batched step split among
    its rows (``elapsed / batch_mean``)."""
    final = outcome.final
    if final is None:
        return {}
    return {"compute_seconds": final.elapsed / max(final.batch_mean, 1.0), "batch_mean": final.batch_mean}


def text_job_run(*, spec: TextJobKind, job_id: int, worker: str = "") -> Any | None:
    """Decode a queued text job of ``spec``'s kind, streaming as it goes, and store how it ended.

    Claims the row (queued -> running) first, so a redelivered task or a job
    stopped or expired in the queue does nothing and returns ``None``. While
    decoding, the heartbeat stores the text so far every
    ``JOB_HEARTBEAT_SECONDS``; a row deleted or swept meanwhile stops the
    decoding and returns ``None``. Otherwise returns the row as stored.
    """
    from generation.errors import ValidationError as GenerationValidationError
    from generation.text.engine import generate_text, text_engine
    from generation.text.types import TextFinal

    manager = spec.kind.model._default_manager
    if spec.load_first:
        queued = manager.filter(pk=job_id, status=JobStatus.QUEUED)
        model_name = queued.values_list("model_name", flat=True).first()
        if model_name is None:
            return None
        # Every thread of a text worker hands its job to this process's one engine, which batches them.
        text_engine(model_name)
    if not jobs.job_claim(kind=spec.kind, job_id=job_id, worker=worker):
        return None
    job = manager.get(pk=job_id)
    out = spec.log.open(job)
    if spec.announce:
        out.event("claimed")
    final = None
    error = error_field = ""
    with jobs.job_running(kind=spec.kind, job=job, progress=lambda: {"text": out.text}) as run, pacing.streaming():
        try:
            items = generate_text(spec.request(job), should_stop=run.should_stop)
            if spec.announce:
                out.event("start")
            for item in items:
                if isinstance(item, TextFinal):
                    final = item
                    break
                out.write(item.text)
        except GenerationValidationError as exc:
            error, error_field = f"{exc.field}: {exc.message}", exc.field
        except Exception:
            error = public_failure(spec.what, error_logged(logger, "%s %s failed", spec.kind.name, job.pk))
    out.flush()
    outcome = _outcome(out.text, final, run.stop_reason, error, error_field)
    values = {**_shared_values(outcome), **spec.values(job, outcome)}
    try:
        with transaction.atomic():
            finished = jobs.job_finish(
                kind=spec.kind, job_id=job.pk, status=outcome.status, reason=outcome.reason, values=values,
                publish=False,  # the end event below tells the watchers
                measured=_measured(outcome),
            )
            if finished:
                spec.finished(job, outcome)
        if finished:
            out.end(**spec.end_fields(outcome, values))
    finally:
        out.close()
    if not finished:
        return None
    job.refresh_from_db()
    return job

"""Following a request's jobs from the web process: text through their Redis logs, images through the studio.

Everything here runs in the event loop of an async view. Database reads
and writes go through ``sync_to_async``; the text logs are read with
``XREAD BLOCK`` on an asyncio Redis client, so a token reaches the client
one Redis round trip after the worker wrote it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from webapp.api import services, stream
from webapp.api.errors import ApiError, engine_error, from_engine, no_worker
from webapp.api.http import KEEPALIVE, sse
from webapp.api.models import TextJob, TextKind
from webapp.api.params import TEXT_PARAM_NAMES, TextSpec
from webapp.core.errors import error_logged, public_failure
from webapp.core.jobs import END_STATUSES, JobStatus
from webapp.core.stream import log_follow

logger = logging.getLogger(__name__)


@dataclass
class Choice:
    index: int
    job: TextJob
    claimed: bool = False
    started: bool = False
    ended: bool = False
    text: str = ""
    end: dict[str, Any] = field(default_factory=dict)


class TextRun:
    """The ``n`` jobs of one text request, followed through their logs."""

    def __init__(self, *, jobs: list[TextJob], spec: TextSpec, kind: str) -> None:
        self.spec = spec
        self.kind = kind
        self.choices = [Choice(index=i, job=job) for i, job in enumerate(jobs)]
        self.id = ("chatcmpl-" if kind == TextKind.CHAT else "cmpl-") + jobs[0].call_id
        self.created = int(time.time())
        self.queue_timeout = float(settings.API_QUEUE_TIMEOUT)
        self.poll = min(1.0, float(settings.API_KEEPALIVE_SECONDS), max(0.05, self.queue_timeout / 4))
        self._events = log_follow(keys={c.index: stream.log_key(c.job) for c in self.choices}, block=self.poll)
        self._last_activity = time.monotonic()

    @property
    def finished(self) -> bool:
        return all(c.ended for c in self.choices)

    async def next(self) -> tuple[Choice, dict[str, Any]] | None:
        """The next event of any choice, or ``None`` after an idle poll (an unclaimed job expires then).

        A job whose worker died is failed by the beat sweep, and its end reaches the log like any other.
        """
        item = await self._events.__anext__()
        if item is None:
            await self._check_idle()
            return None
        index, event = item
        self._last_activity = time.monotonic()
        choice = self.choices[index]
        if choice.ended:  # the end of a job this view expired, logged by the lifecycle: already handled
            return None
        kind = event.get("t")
        if kind == "claimed":
            choice.claimed = True
        elif kind == "start":
            choice.claimed = choice.started = True
        elif kind == "chunk":
            choice.text += event.get("text", "")
        elif kind == "end":
            choice.ended = True
            choice.end = event
        return choice, event

    async def _check_idle(self) -> None:
        idle = time.monotonic() - self._last_activity
        for choice in self.choices:
            if choice.ended:
                continue
            if not choice.claimed and idle >= self.queue_timeout:
                expired = await sync_to_async(services.text_job_expire_unclaimed)(job=choice.job, waited=self.queue_timeout)
                if expired:
                    choice.ended = True
                    choice.end = {"t": "end", "status": "failed", "finish_reason": "error", "no_worker": True,
                                  "reason": f"No worker took the job within {self.queue_timeout:g} s."}
                    if not any(c.started for c in self.choices):
                        await self.stop()
                        raise no_worker(self.queue_timeout)
                    return

    async def wait_started(self) -> None:
        """Until the first choice's engine accepted the request: 503 if no worker took it, 400 if refused."""
        first = self.choices[0]
        while not first.started:
            await self.next()
            if first.ended:
                raise self.error(first.end)

    async def wait_finished(self) -> None:
        while not self.finished:
            await self.next()

    def error(self, end: dict[str, Any]) -> ApiError:
        """The error a failed choice stands for: 400 naming the parameter the engine refused, else 500/503."""
        if end.get("no_worker"):
            return no_worker(self.queue_timeout)
        field_name = end.get("field") or ""
        if field_name:
            names = {**TEXT_PARAM_NAMES, "max_new_tokens": self.spec.max_tokens_param}
            if self.kind == TextKind.COMPLETION:
                names["messages"] = "prompt"
            message = end.get("reason", "").partition(": ")[2] or end.get("reason", "")
            return from_engine(SimpleNamespace(field=field_name, message=message), names=names)
        # The reason can hold an exception's text (paths, hosts): the client gets an id, the log the reason.
        error_id = error_logged(logger, "API text job failed: %s", end.get("reason") or "unknown error", exc_info=False)
        return engine_error(public_failure("The job", error_id))

    async def stop(self) -> None:
        """Stop every choice still running or queued (the client went away)."""
        live = [c.job for c in self.choices if not c.ended]
        if not live:
            return
        await sync_to_async(services.text_jobs_stop)(jobs=live)

    async def close(self) -> None:
        await self._events.aclose()  # type: ignore[attr-defined]

    # --- Response bodies ---------------------------------------------------------

    def _finish_reason(self, choice: Choice) -> str:
        reason = choice.end.get("finish_reason") or "stop"
        return reason if reason in ("stop", "length") else "stop"

    def usage(self) -> dict[str, int]:
        prompt = next((c.end.get("prompt_tokens") for c in self.choices if c.end.get("prompt_tokens") is not None), 0)
        completion = sum(int(c.end.get("completion_tokens") or 0) for c in self.choices)
        return {"prompt_tokens": int(prompt or 0), "completion_tokens": completion,
                "total_tokens": int(prompt or 0) + completion}

    def result(self) -> dict[str, Any]:
        """The non-streamed response body; raises the first choice's error if one failed."""
        for choice in self.choices:
            if choice.end.get("status") == "failed":
                raise self.error(choice.end)
        base = {"id": self.id, "created": self.created, "model": self.spec.model, "system_fingerprint": None}
        if self.kind == TextKind.CHAT:
            choices = [
                {"index": c.index, "message": {"role": "assistant", "content": c.text, "refusal": None},
                 "logprobs": None, "finish_reason": self._finish_reason(c)}
                for c in self.choices
            ]
            return {**base, "object": "chat.completion", "choices": choices, "usage": self.usage()}
        choices = [
            {"index": c.index, "text": c.text, "logprobs": None, "finish_reason": self._finish_reason(c)}
            for c in self.choices
        ]
        return {**base, "object": "text_completion", "choices": choices, "usage": self.usage()}

    def _chunk(self, choices: list[dict[str, Any]], *, usage: Any = None, with_usage: bool | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id, "created": self.created, "model": self.spec.model, "system_fingerprint": None,
            "object": "chat.completion.chunk" if self.kind == TextKind.CHAT else "text_completion",
            "choices": choices,
        }
        if self.spec.include_usage if with_usage is None else with_usage:
            chunk["usage"] = usage
        return sse(chunk)

    def _delta(self, index: int, *, text: str | None = None, role: bool = False, finish: str | None = None) -> dict[str, Any]:
        if self.kind == TextKind.CHAT:
            delta: dict[str, Any] = {}
            if role:
                delta = {"role": "assistant", "content": ""}
            elif text is not None:
                delta = {"content": text}
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}

    async def events(self) -> AsyncIterator[bytes]:
        """The SSE stream: the role first, text as it comes, each choice's finish, usage, ``[DONE]``.

        An idle stream gets comment lines every ``API_KEEPALIVE_SECONDS``. If
        the client goes away, the jobs are stopped (the engine stops within a token).
        """
        keepalive = float(settings.API_KEEPALIVE_SECONDS)
        last_sent = time.monotonic()
        try:
            if self.kind == TextKind.CHAT:
                yield self._chunk([self._delta(c.index, role=True) for c in self.choices])
            for choice in self.choices:  # text the first choice logged before the response started
                if choice.text:
                    yield self._chunk([self._delta(choice.index, text=choice.text)])
                if choice.ended:
                    yield self._chunk([self._delta(choice.index, finish=self._finish_reason(choice))])
            while not self.finished:
                item = await self.next()
                now = time.monotonic()
                if item is None:
                    if now - last_sent >= keepalive:
                        last_sent = now
                        yield KEEPALIVE
                    continue
                choice, event = item
                if event.get("t") == "chunk" and event.get("text"):
                    last_sent = now
                    yield self._chunk([self._delta(choice.index, text=event["text"])])
                elif event.get("t") == "end":
                    last_sent = now
                    if event.get("status") == "failed" or choice.end.get("status") == "failed":
                        error = self.error(choice.end)
                        yield sse(error.body())
                        yield sse("[DONE]")  # the stream ends cleanly: clients stop reading here
                        await self.stop()
                        return
                    yield self._chunk([self._delta(choice.index, finish=self._finish_reason(choice))])
            if self.spec.include_usage:
                yield self._chunk([], usage=self.usage())
            yield sse("[DONE]")
        finally:
            if not self.finished:
                await asyncio.shield(self.stop())
            await self.close()


# --- Images -----------------------------------------------------------------------



class ImageRun:
    """One studio job made by an image request: its progress (the studio's channel-layer
    events) and its end (the job's row)."""

    def __init__(self, *, job: Any, principal: Any, spec: Any) -> None:
        self.job = job
        self.principal = principal
        self.spec = spec
        self.queue_timeout = float(settings.API_QUEUE_TIMEOUT)
        self.created = int(time.time())
        self.started = time.monotonic()
        self.status: str = JobStatus.QUEUED
        self.reason = ""

    async def _refresh(self) -> None:
        row = await sync_to_async(services.image_job_state)(job_id=self.job.pk)
        self.status, self.reason = row["status"], row["reason"]
        overdue = self.status == JobStatus.QUEUED and time.monotonic() - self.started >= self.queue_timeout
        if overdue and await sync_to_async(services.image_job_expire_unclaimed)(
            job_id=self.job.pk, waited=self.queue_timeout
        ):
            raise no_worker(self.queue_timeout)

    async def progress(self) -> AsyncIterator[dict[str, Any] | None]:
        """Progress events of the job until it ends (``None`` on an idle poll).

        The row is read again when the lifecycle announces a change of the
        job's state (``studio.job``, published after it commits) and after
        each idle half second, so an end is seen at once and a lost event
        costs half a second at most; the subscription comes first, so no
        change after the first read goes unheard.
        """
        from channels.layers import get_channel_layer

        from webapp.studio.events import studio_group_name

        layer = get_channel_layer()
        group = studio_group_name(project_id=self.principal.project.pk, user_id=self.principal.user.pk)
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            while True:
                await self._refresh()
                if self.status in END_STATUSES:
                    return
                while True:
                    try:
                        message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
                    except TimeoutError:
                        yield None
                        break
                    if message.get("job_id") != self.job.pk:
                        continue
                    if message.get("type") == "studio.job":
                        break
                    if message.get("type") == "studio.progress":
                        yield {"type": "image_generation.progress", "step": message.get("step"),
                               "total": message.get("total"), "eta": message.get("eta")}
        finally:
            await layer.group_discard(group, channel)

    async def wait(self) -> None:
        """Until the job ends (woken by its state events, as :meth:`progress`)."""
        async for _ in self.progress():
            pass

    async def stop(self) -> None:
        if self.status not in END_STATUSES:
            await sync_to_async(services.image_call_stop)(job=self.job)

    async def images(self, *, url_for: Any) -> list[dict[str, Any]]:
        """The finished job's images as OpenAI's ``data`` entries; raises for a failed job."""
        if self.status != JobStatus.DONE:
            raise engine_error(f"The image job ended {self.status}: {self.reason or 'no reason given'}")
        rows = await sync_to_async(services.image_job_assets)(
            job_id=self.job.pk, key_id=self.principal.key.pk, with_bytes=self.spec.response_format == "b64_json",
            user=self.principal.user,
        )
        data = []
        for row in rows:
            entry: dict[str, Any] = {"revised_prompt": None}
            if self.spec.response_format == "b64_json":
                entry["b64_json"] = row["b64_json"]
            else:
                entry["url"] = url_for(row["id"])
            data.append(entry)
        return data

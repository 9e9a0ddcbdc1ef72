"""The live side of a reply: its chunk log in Redis and its channel-layer events.

Every chunk a worker emits gets the next sequence number and goes two ways:
appended to the reply's Redis Stream (entry id ``0-<seq>``, so the log itself
refuses a duplicate or out-of-order chunk) and published to the
conversation's group. A client that connects late or reconnects reads the log
after the last sequence number it holds, then continues with live events,
dropping any it already has. The log expires ``CHAT_STREAM_TTL`` seconds
after its last write; by then the database holds the final text.

Stopping a reply, its heartbeat and the sweep belong to the job lifecycle
(``webapp.core.jobs``); ``reply_state_publish`` and ``reply_end_values`` are
what a reply adds to it.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from webapp.core import pacing
from webapp.core.events import get_publisher
from webapp.core.jobs import END_STATUSES, JobStatus
from webapp.core.redis import get_redis

logger = logging.getLogger(__name__)


def _stream_id(message: Any) -> str:
    # The creation time makes keys unique even where a database reuses ids
    # (a test database rolled back, a fresh database beside an old Redis).
    return f"{message.pk}.{int(message.created_at.timestamp() * 1_000_000)}"


def log_key(message: Any) -> str:
    return f"chat:reply:{_stream_id(message)}:log"


def _ttl() -> int:
    return int(getattr(settings, "CHAT_STREAM_TTL", 3600))


def chunk_event(*, message_id: int, seq: int, text: str) -> dict[str, Any]:
    return {"type": "chunk", "message": message_id, "seq": seq, "text": text}


def end_event(*, message_id: int, seq: int, status: str) -> dict[str, Any]:
    return {"type": "end", "message": message_id, "seq": seq, "status": status}


def log_read(*, message: Any, after: int = 0) -> list[dict[str, Any]]:
    """The logged events of a reply with a sequence number above ``after``, in order."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = get_redis().xrange(  # type: ignore[assignment]
        log_key(message), min=f"0-{after + 1}", max="+"
    )
    return [json.loads(fields[b"e"]) for _, fields in entries]


def log_text(*, message: Any) -> str:
    """The text streamed so far, joined from the log ("" once the log has expired)."""
    return "".join(event.get("text", "") for event in log_read(message=message))


class ReplyStream:
    """Coalesces engine deltas into numbered chunks, logs them and publishes them.

    A chunk goes out when ``pacing.chunk_interval(interval)`` seconds have
    passed since the last one (``interval`` alone, longer while many streams
    share the process's budget: ``webapp.core.pacing``) or ``max_pending``
    deltas are waiting; the first delta goes out at once so
    that the time to first token is the engine's own. The decoding thread only
    numbers chunks and queues them: a writer thread appends them to the log
    and hands them to the channel publisher, in order, batching whatever has
    queued up into one Redis round trip. Not thread-safe: one generation loop
    owns it. ``end()`` (or ``close()``) drains the writer.
    """

    def __init__(
        self,
        *,
        message: Any,
        group: str,
        interval: float = 0.02,
        max_pending: int = 8,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.message_id = message.pk
        self._key = log_key(message)
        self.group = group
        self.interval = interval
        self.max_pending = max_pending
        self.clock = clock
        self.seq = 0
        self.text = ""
        self._pending: list[str] = []
        self._last_flush: float | None = None
        self._redis = get_redis()
        self._publisher = get_publisher()
        self._ttl = _ttl()
        self._outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    def write(self, text: str) -> None:
        if not text:
            return
        self._pending.append(text)
        now = self.clock()
        if (
            self._last_flush is None
            or now - self._last_flush >= pacing.chunk_interval(self.interval)
            or len(self._pending) >= self.max_pending
        ):
            self.flush(now=now)

    def flush(self, *, now: float | None = None) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._last_flush = self.clock() if now is None else now
        self.text += text
        self._emit(chunk_event(message_id=self.message_id, seq=self.seq + 1, text=text))

    def end(self, *, status: str) -> None:
        """Flush, log and publish the end event, and wait until all of it is out.

        Call it once the database holds the final row.
        """
        self.flush()
        self._emit(end_event(message_id=self.message_id, seq=self.seq + 1, status=status))
        self.close()
        self._publisher.flush(timeout=5)

    def close(self, timeout: float = 10) -> None:
        """Send what is queued and stop the writer thread (idempotent)."""
        if self._writer is not None:
            self._outbox.put(None)
            self._writer.join(timeout)
            self._writer = None

    def _emit(self, event: dict[str, Any]) -> None:
        self.seq = event["seq"]
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_out, name=f"reply-{self.message_id}", daemon=True)
            self._writer.start()
        self._outbox.put(event)

    def _write_out(self) -> None:
        done = False
        while not done:
            batch = [self._outbox.get()]
            while True:  # whatever else queued up meanwhile goes in the same round trip
                try:
                    batch.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is None:
                done = True
            events = [event for event in batch if event is not None]
            if not events:
                continue
            try:
                pipe = self._redis.pipeline(transaction=False)
                for event in events:
                    pipe.xadd(self._key, {b"e": json.dumps(event)}, id=f"0-{event['seq']}")
                pipe.expire(self._key, self._ttl)
                pipe.execute()
            except Exception:  # the live path still works; a replay may miss these
                logger.exception("could not log chunks of reply %s", self.message_id)
            for event in events:
                self._publisher.publish(self.group, {"type": "chat.event", "event": event})


def end_publish(*, message: Any, group: str, status: str) -> None:
    """Log and publish the end of a reply that no worker is streaming (stopped in the queue, swept)."""
    client = get_redis()
    key = log_key(message)
    last: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(key, count=1)  # type: ignore[assignment]
    seq = int(last[0][0].split(b"-")[1]) + 1 if last else 1
    event = end_event(message_id=message.pk, seq=seq, status=status)
    try:
        client.xadd(key, {b"e": json.dumps(event)}, id=f"0-{seq}")
        client.expire(key, _ttl())
    except Exception:  # noqa: S110 - a worker appended meanwhile; the live event still goes out
        pass
    get_publisher().publish(group, {"type": "chat.event", "event": event})


def reply_state_publish(message: Any) -> None:
    """The job lifecycle's ``publish`` for replies: an end that no worker streamed
    (stopped in the queue, failed by the sweep or a lost worker) is logged and published.

    A worker's own end goes out through its ``ReplyStream``.
    """
    if message.status in END_STATUSES:
        end_publish(message=message, group=f"chat_conversation_{message.conversation_id}", status=message.status)


def reply_end_values(message: Any, status: str) -> dict[str, Any]:
    """The job lifecycle's ``end_values`` for replies: a failed reply keeps the text streamed so far."""
    from webapp.chat.markdown import render_markdown

    if status == JobStatus.STOPPED:
        return {"finish_reason": "cancelled", "html": render_markdown(message.text)}
    logged = log_text(message=message)
    text = logged if len(logged) > len(message.text) else message.text
    return {"text": text, "html": render_markdown(text), "finish_reason": "error"}

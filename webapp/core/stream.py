"""The live side of a text job, one implementation for every kind: its chunk log in Redis,
paced chunks, optional channel-layer events and the end event.

Every event a worker emits gets the next sequence number and is appended to
the job's Redis Stream (entry id ``0-<seq>``, so the log itself refuses a
duplicate or out-of-order event). A kind whose watchers sit on websockets
(chat) also publishes each event to the job's channel-layer group; a kind read
by an async view (the API) follows the log with ``XREAD BLOCK``
(``log_follow``), so no database polling sits between the engine and the
client. A client that connects late or reconnects reads the log after the last
sequence number it holds (``log_read``). The log expires ``CHAT_STREAM_TTL``
seconds after its last write; by then the database holds the final text.

A kind describes its events once, as a ``TextLog``: the name of the type field
(chat's websocket clients read ``type``, the API's log says ``t``), the fields
every event carries (chat names its reply: ``message``) and, for publishing,
the group and the channel-layer message type. Stopping, the heartbeat and the
sweep are the job lifecycle's (``webapp.core.jobs``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from webapp.core import pacing
from webapp.core.events import get_publisher
from webapp.core.jobs import JobKind, job_key
from webapp.core.redis import get_redis

logger = logging.getLogger(__name__)


def _no_tag(job: Any) -> dict[str, Any]:
    return {}


def _ttl() -> int:
    return int(getattr(settings, "CHAT_STREAM_TTL", 3600))


@dataclass(frozen=True)
class TextLog:
    """How one kind of text job's events look, in its log and on the channel layer.

    An event is ``{type_field: <type>, **tag(job), "seq": <n>, **fields}``.
    ``group(job)`` names the channel-layer group each event is also published
    to, wrapped as ``{"type": group_event, "event": <event>}``; without it the
    events are only logged.
    """

    kind: JobKind | str
    type_field: str = "type"
    tag: Callable[[Any], dict[str, Any]] = field(default=_no_tag)
    group: Callable[[Any], str] | None = None
    group_event: str = ""

    def key(self, job: Any) -> str:
        return job_key(kind=self.kind, job=job, part="log")

    def event(self, job_tag: dict[str, Any], type_: str, seq: int, fields: dict[str, Any]) -> dict[str, Any]:
        return {self.type_field: type_, **job_tag, "seq": seq, **fields}

    def read(self, job: Any, *, after: int = 0) -> list[dict[str, Any]]:
        """The logged events of ``job`` with a sequence number above ``after``, in order."""
        entries: list[tuple[bytes, dict[bytes, bytes]]] = get_redis().xrange(  # type: ignore[assignment]
            self.key(job), min=f"0-{after + 1}", max="+"
        )
        return [json.loads(fields[b"e"]) for _, fields in entries]

    def text(self, job: Any) -> str:
        """The text streamed so far, joined from the log ("" once the log has expired)."""
        return "".join(event.get("text", "") for event in self.read(job))

    def open(self, job: Any, **options: Any) -> TextStream:
        """A ``TextStream`` writing ``job``'s events (``options``: see ``TextStream``)."""
        return TextStream(log=self, job=job, **options)

    def end(self, job: Any, **fields: Any) -> None:
        """Log (and publish) the end of a job that no worker is streaming (ended in the queue, swept).

        Numbered after the last logged event; if a worker appends meanwhile the
        log refuses this one, and the worker's own end follows.
        """
        client = get_redis()
        key = self.key(job)
        last: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(key, count=1)  # type: ignore[assignment]
        seq = int(last[0][0].split(b"-")[1]) + 1 if last else 1
        event = self.event(self.tag(job), "end", seq, fields)
        try:
            client.xadd(key, {b"e": json.dumps(event)}, id=f"0-{seq}")
            client.expire(key, _ttl())
        except Exception:  # noqa: S110 - a worker appended meanwhile; its own end follows
            pass
        if self.group is not None:
            get_publisher().publish(self.group(job), {"type": self.group_event, "event": event})


class TextStream:
    """Coalesces engine deltas into numbered chunks, logs them and (optionally) publishes them.

    A chunk goes out when ``pacing.chunk_interval(interval)`` seconds have
    passed since the last one (``interval`` alone, longer while many streams
    share the process's budget: ``webapp.core.pacing``) or ``max_pending``
    deltas are waiting; the first delta goes out at once so that the time to
    first token is the engine's own. The decoding thread only numbers events
    and queues them: a writer thread appends them to the log and hands them to
    the channel publisher, in order, batching whatever has queued up into one
    Redis round trip. Not thread-safe: one generation loop owns it. ``end()``
    (or ``close()``) drains the writer.

    ``group`` overrides the group ``log.group(job)`` names ("" publishes nothing).
    """

    def __init__(
        self,
        *,
        log: TextLog,
        job: Any,
        group: str | None = None,
        interval: float = 0.02,
        max_pending: int = 8,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.log = log
        self.job_id = job.pk
        self._key = log.key(job)
        self._tag = log.tag(job)
        self.group = group if group is not None else (log.group(job) if log.group is not None else "")
        self.interval = interval
        self.max_pending = max_pending
        self.clock = clock
        self.seq = 0
        self.text = ""
        self._pending: list[str] = []
        self._last_flush: float | None = None
        self._redis = get_redis()
        self._publisher = get_publisher() if self.group else None
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
        self._emit("chunk", {"text": text})

    def event(self, type_: str, **fields: Any) -> None:
        """Flush the text waiting, then log (and publish) one event of ``type_``."""
        self.flush()
        self._emit(type_, fields)

    def end(self, **fields: Any) -> None:
        """Flush, log and publish the end event, and wait until all of it is out.

        Call it once the database holds the final row.
        """
        self.event("end", **fields)
        self.close()
        if self._publisher is not None:
            self._publisher.flush(timeout=5)

    def close(self, timeout: float = 10) -> None:
        """Send the text waiting and what is queued, and stop the writer thread (idempotent)."""
        self.flush()
        if self._writer is not None:
            self._outbox.put(None)
            self._writer.join(timeout)
            self._writer = None

    def _emit(self, type_: str, fields: dict[str, Any]) -> None:
        self.seq += 1
        if self._writer is None:
            name = f"stream-{self._key}"
            self._writer = threading.Thread(target=self._write_out, name=name, daemon=True)
            self._writer.start()
        self._outbox.put(self.log.event(self._tag, type_, self.seq, fields))

    def _write_out(self) -> None:
        done = False
        while not done:
            batch = [self._outbox.get()]
            while True:  # whatever else queued up meanwhile goes in the same round trip
                try:
                    batch.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is None
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
                logger.exception("could not log the events of %s", self._key)
            if self._publisher is not None:
                for event in events:
                    self._publisher.publish(self.group, {"type": self.log.group_event, "event": event})


# --- Following logs, in a web process's event loop ------------------------------------

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def async_redis() -> aioredis.Redis:
    """One asyncio Redis client per event loop (a client cannot move between loops)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # XREAD's own ``block`` bounds each read; a client socket timeout could swallow
        # the cancellation of a request whose client went away (see CHANNEL_LAYERS).
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, decode_responses=False, socket_timeout=None, socket_keepalive=True
        )
        _clients[loop] = client
    return client


async def log_follow(
    *, keys: dict[int, str], block: float
) -> AsyncIterator[tuple[int, dict[str, Any]] | None]:
    """Yield ``(job index, event)`` from several logs as they are written, in each log's order.

    Yields ``None`` after ``block`` seconds without an event (time for a
    keep-alive or a liveness check). Never ends by itself: the caller stops
    reading once it has what it needs.
    """
    client = async_redis()
    cursors = dict.fromkeys(keys.values(), "0-0")
    index_of = {key: index for index, key in keys.items()}
    while True:
        reply: Any = await client.xread(cursors, block=max(1, int(block * 1000)), count=512)  # type: ignore[arg-type]
        if not reply:
            yield None
            continue
        for raw_key, entries in reply:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            for entry_id, fields in entries:
                cursors[key] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                yield index_of[key], json.loads(fields[b"e"])

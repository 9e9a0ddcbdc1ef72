"""The live side of an API text job: its event log in Redis.

The worker appends the job's events to a Redis Stream (entry id ``0-<seq>``,
so the log refuses duplicates and disorder): ``claimed`` when it takes the
job, ``start`` once the engine accepted the request, ``chunk`` for text,
and ``end`` with the finish reason and usage. The request's async view reads
the log with ``XREAD BLOCK`` (``log_follow``), so no database polling sits
between the engine and the client. The log expires ``CHAT_STREAM_TTL``
seconds after its last write.

This is chat's chunk log (``webapp.chat.stream``) without the channel-layer
publishing that API jobs don't need. Stopping, the heartbeat and the sweep
are the shared job lifecycle's (``webapp.core.jobs``).
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
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from webapp.core import pacing
from webapp.core.redis import get_redis

logger = logging.getLogger(__name__)


def _stream_id(job: Any) -> str:
    # The creation time keeps keys unique where a database reuses ids.
    return f"{job.pk}.{int(job.created_at.timestamp() * 1_000_000)}"


def log_key(job: Any) -> str:
    return f"api:text:{_stream_id(job)}:log"


def _ttl() -> int:
    return int(getattr(settings, "CHAT_STREAM_TTL", 3600))


class JobLog:
    """Numbers a job's events and appends them to its log from a writer thread.

    Text is coalesced: a chunk goes out when ``pacing.chunk_interval(interval)``
    seconds have passed since the last one (``webapp.core.pacing``) or
    ``max_pending`` deltas wait; the first goes out at
    once, so the time to first token is the engine's own. The decoding thread
    only queues; the writer batches whatever queued up into one round trip.
    """

    def __init__(
        self, *, job: Any, interval: float = 0.02, max_pending: int = 8,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.job_id = job.pk
        self._key = log_key(job)
        self.interval = interval
        self.max_pending = max_pending
        self.clock = clock
        self.seq = 0
        self.text = ""
        self._pending: list[str] = []
        self._last_flush: float | None = None
        self._redis = get_redis()
        self._ttl = _ttl()
        self._outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    def event(self, kind: str, **fields: Any) -> None:
        self.flush()
        self._emit({"t": kind, **fields})

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
        self._emit({"t": "chunk", "text": text})

    def close(self, timeout: float = 10) -> None:
        """Write out what is queued and stop the writer (idempotent)."""
        self.flush()
        if self._writer is not None:
            self._outbox.put(None)
            self._writer.join(timeout)
            self._writer = None

    def _emit(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["seq"] = self.seq
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_out, name=f"api-log-{self.job_id}", daemon=True)
            self._writer.start()
        self._outbox.put(event)

    def _write_out(self) -> None:
        done = False
        while not done:
            batch = [self._outbox.get()]
            while True:
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
            except Exception:
                logger.exception("could not log events of API job %s", self.job_id)


def end_append(*, job: Any, **fields: Any) -> None:
    """Append an ``end`` event for a job no worker is running (stopped or failed while queued, swept)."""
    client = get_redis()
    key = log_key(job)
    last: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(key, count=1)  # type: ignore[assignment]
    seq = int(last[0][0].split(b"-")[1]) + 1 if last else 1
    try:
        client.xadd(key, {b"e": json.dumps({"t": "end", "seq": seq, **fields})}, id=f"0-{seq}")
        client.expire(key, _ttl())
    except Exception:  # noqa: S110 - a worker appended meanwhile; its own end follows
        pass


# --- Reading, in the web process's event loop --------------------------------------

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

"""The live side of a reply: its chunk log in Redis, its channel-layer events, its stop flag.

Every chunk a worker emits gets the next sequence number and goes two ways:
appended to the reply's Redis Stream (entry id ``0-<seq>``, so the log itself
refuses a duplicate or out-of-order chunk) and published to the
conversation's group. A client that connects late or reconnects reads the log
after the last sequence number it holds, then continues with live events,
dropping any it already has. The log expires ``CHAT_STREAM_TTL`` seconds
after its last write; by then the database holds the final text.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from webapp.core.redis import get_redis


def _stream_id(message: Any) -> str:
    # The creation time makes keys unique even where a database reuses ids
    # (a test database rolled back, a fresh database beside an old Redis).
    return f"{message.pk}.{int(message.created_at.timestamp() * 1_000_000)}"


def log_key(message: Any) -> str:
    return f"chat:reply:{_stream_id(message)}:log"


def stop_key(message: Any) -> str:
    return f"chat:reply:{_stream_id(message)}:stop"


def _ttl() -> int:
    return int(getattr(settings, "CHAT_STREAM_TTL", 3600))


def chunk_event(*, message_id: int, seq: int, text: str) -> dict[str, Any]:
    return {"type": "chunk", "message": message_id, "seq": seq, "text": text}


def end_event(*, message_id: int, seq: int, status: str) -> dict[str, Any]:
    return {"type": "end", "message": message_id, "seq": seq, "status": status}


def log_read(*, message: Any, after: int = 0) -> list[dict[str, Any]]:
    """The logged events of a reply with a sequence number above ``after``, in order."""
    entries = get_redis().xrange(log_key(message), min=f"0-{after + 1}", max="+")
    return [json.loads(fields[b"e"]) for _, fields in entries]


def log_text(*, message: Any) -> str:
    """The text streamed so far, joined from the log ("" once the log has expired)."""
    return "".join(event.get("text", "") for event in log_read(message=message))


def stop_request(*, message: Any) -> None:
    get_redis().set(stop_key(message), b"1", ex=_ttl())


def stop_checker(*, message: Any, min_interval: float = 0.005) -> Callable[[], bool]:
    """A ``should_stop`` for the engine: reads the stop flag, at most every ``min_interval`` s.

    The engine polls before every forward pass; a token takes longer than
    ``min_interval`` on any hardware we run, so a stop lands within a token.
    """
    client, key = get_redis(), stop_key(message)
    state = {"checked": 0.0, "stopped": False}

    def should_stop() -> bool:
        now = time.perf_counter()
        if not state["stopped"] and now - state["checked"] >= min_interval:
            state["checked"] = now
            state["stopped"] = bool(client.exists(key))
        return bool(state["stopped"])

    return should_stop


class ReplyStream:
    """Coalesces engine deltas into numbered chunks, logs them and publishes them.

    A chunk goes out when ``interval`` seconds have passed since the last one
    or ``max_pending`` deltas are waiting; the first delta goes out at once so
    that the time to first token is the engine's own. Not thread-safe: one
    generation loop owns it.
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
        from webapp.core.events import get_publisher

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

    def write(self, text: str) -> None:
        if not text:
            return
        self._pending.append(text)
        now = self.clock()
        if (
            self._last_flush is None
            or now - self._last_flush >= self.interval
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
        """Flush, then log and publish the end event. Call once the database holds the final row."""
        self.flush()
        self._emit(end_event(message_id=self.message_id, seq=self.seq + 1, status=status))
        self._publisher.flush(timeout=5)

    def _emit(self, event: dict[str, Any]) -> None:
        self.seq = event["seq"]
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self._key, {b"e": json.dumps(event)}, id=f"0-{self.seq}")
        pipe.expire(self._key, self._ttl)
        pipe.execute()
        self._publisher.publish(self.group, {"type": "chat.event", "event": event})


def end_publish(*, message: Any, group: str, status: str) -> None:
    """Log and publish the end of a reply that no worker is streaming (stopped in the queue, swept)."""
    client = get_redis()
    key = log_key(message)
    last = client.xrevrange(key, count=1)
    seq = int(last[0][0].split(b"-")[1]) + 1 if last else 1
    event = end_event(message_id=message.pk, seq=seq, status=status)
    try:
        client.xadd(key, {b"e": json.dumps(event)}, id=f"0-{seq}")
        client.expire(key, _ttl())
    except Exception:  # noqa: S110 - a worker appended meanwhile; the live event still goes out
        pass
    from webapp.core.events import get_publisher

    get_publisher().publish(group, {"type": "chat.event", "event": event})

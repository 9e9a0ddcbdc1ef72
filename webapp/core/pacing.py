"""One chunk budget per worker process, shared by the streams that decode in it.

A streamed reply goes out in chunks: every chunk is a channel-layer event, a
Redis round trip or two in the worker, in Redis and in daphne, and a websocket
frame. One reply alone sends a chunk every ``base`` seconds at most (smooth
text); with ``n`` replies decoding at once each waits ``n`` times as long, so
the process's total rate of events stays that of one reply. Without it, 8
replies at once sent 8 times the events, and on a busy machine they queued up
for seconds between the worker and the browser (bench/concurrency.py). The
first chunk of a reply always goes at once: the time to first token is the
engine's.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_live = 0


@contextlib.contextmanager
def streaming() -> Iterator[None]:
    """Count a stream as live in this process while inside."""
    global _live
    with _lock:
        _live += 1
    try:
        yield
    finally:
        with _lock:
            _live -= 1


def live_streams() -> int:
    return _live


def chunk_interval(base: float) -> float:
    """The least time between two chunks of one stream, with the others live now."""
    return base * max(1, _live)

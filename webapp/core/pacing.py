"""One chunk budget per worker process, shared by the streams that decode in it.

A streamed reply goes out in chunks: every chunk is a channel-layer event (a
few Redis round trips in the worker and about four in daphne, whose one reader
serves all of its sockets in turn) and a websocket frame. On a machine whose
cores the engine keeps busy, each round trip waits to be scheduled, so the
event rate must not grow with the number of replies decoding at once. The
streams live in a process share ``ATELIER_STREAM_EVENTS_PER_SECOND`` (default
25): alone, a reply sends a chunk every ``base`` seconds at most (smooth
text); with ``n`` live, every ``n / 25`` seconds. The first chunk of a reply
always goes at once: the time to first token is the engine's.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

EVENTS_PER_SECOND = float(os.environ.get("ATELIER_STREAM_EVENTS_PER_SECOND", "25"))

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
    return max(base, _live / EVENTS_PER_SECOND)

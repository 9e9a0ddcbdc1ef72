"""A token bucket per connection: cheap, in memory, no shared state.

A websocket is one long connection, so a per-connection limit needs no Redis:
the bucket lives as long as the consumer. Refusing early (before any database
check) keeps a flooding client from costing more than the refusal.
"""
from __future__ import annotations

import time


class TokenBucket:
    """Allows ``burst`` calls at once, then ``rate`` per second."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

"""Per-key limits in Redis: requests per minute (a fixed window) and requests in flight.

These sit on top of any per-user quotas. Both counters live in Redis so
that every web process shares them. A request in flight is a member of a
sorted set scored by its start, so one whose process died is forgotten
after ``API_MAX_REQUEST_SECONDS`` instead of holding a slot for ever.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from webapp.api.errors import ApiError
from webapp.core.redis import get_redis


def _rpm() -> int:
    return int(settings.API_REQUESTS_PER_MINUTE)


def _concurrency() -> int:
    return int(settings.API_CONCURRENT_REQUESTS)


@dataclass
class Lease:
    key_ref: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)
    released: bool = False

    def release(self) -> None:
        """Free the in-flight slot (idempotent)."""
        if not self.released:
            self.released = True
            get_redis().zrem(_inflight_key(self.key_ref), self.token)


def _inflight_key(key_ref: str) -> str:
    return f"api:key:{key_ref}:inflight"


def key_ref(key: Any) -> str:
    # The id alone is not enough where a database reuses ids (a fresh one beside an old Redis).
    return f"{key.pk}.{key.secret_hash[:12]}"


def limits_acquire(*, key: Any) -> Lease:
    """Count one request against the key; raise a 429 ``ApiError`` (with Retry-After) over a limit.

    The returned lease holds a slot among the key's concurrent requests
    until ``release()``; its ``headers`` are the ``x-ratelimit-*`` headers.
    """
    now = time.time()
    window = int(now // 60)
    reset = max(1, int(60 - now % 60 + 0.999))
    rpm, concurrency = _rpm(), _concurrency()
    token = secrets.token_hex(8)
    ref = key_ref(key)
    minute_key = f"api:key:{ref}:rpm:{window}"
    inflight = _inflight_key(ref)
    pipe = get_redis().pipeline(transaction=True)
    pipe.incr(minute_key)
    pipe.expire(minute_key, 120)
    pipe.zremrangebyscore(inflight, "-inf", now - float(settings.API_MAX_REQUEST_SECONDS))
    pipe.zadd(inflight, {token: now})
    pipe.zcard(inflight)
    pipe.expire(inflight, int(settings.API_MAX_REQUEST_SECONDS))
    used, _, _, _, running, _ = pipe.execute()
    headers = {
        "x-ratelimit-limit-requests": str(rpm),
        "x-ratelimit-remaining-requests": str(max(0, rpm - int(used))),
        "x-ratelimit-reset-requests": f"{reset}s",
        "x-ratelimit-limit-concurrent": str(concurrency),
        "x-ratelimit-remaining-concurrent": str(max(0, concurrency - int(running))),
    }
    if int(used) > rpm:
        get_redis().zrem(inflight, token)
        raise ApiError(
            429, f"Rate limit reached: {rpm} requests per minute for this key. Retry in {reset} s.",
            type="requests", code="rate_limit_exceeded", headers={**headers, "Retry-After": str(reset)},
        )
    if int(running) > concurrency:
        get_redis().zrem(inflight, token)
        raise ApiError(
            429, f"Too many requests in flight: at most {concurrency} at once for this key.",
            type="requests", code="concurrency_limit_exceeded",
            headers={**headers, "x-ratelimit-remaining-concurrent": "0", "Retry-After": "1"},
        )
    return Lease(key_ref=ref, token=token, headers=headers)

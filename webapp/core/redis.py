"""One Redis client per process for flags and logs that live outside the database."""
from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=False, health_check_interval=30)

from __future__ import annotations

import socket

from celery import shared_task


@shared_task(name="core.ping")
def ping(value: str) -> dict[str, str]:
    """A health probe: proves that a worker consumes the queue and answers."""
    return {"echo": value, "host": socket.gethostname()}

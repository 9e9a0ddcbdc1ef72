"""Loaded by pytest before Django (``-p tests._env``): points the suite at its own
state folder and at a Redis port of its own, so it never touches ``var/`` data or
a Redis that happens to run on this machine."""
from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


os.environ.setdefault("ATELIER_MODEL_CACHE", str(ROOT / "var" / "models"))
os.environ["ATELIER_VAR_DIR"] = str(ROOT / "var" / "test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
# Jobs beat every second in tests (the real workers too), so heartbeats show within a test.
os.environ.setdefault("ATELIER_JOB_HEARTBEAT_SECONDS", "1")
# A replacement pool process loads the default models before it says "up"; on a
# busy machine that takes minutes, and Celery would kill it as hung after 120 s.
os.environ.setdefault("CELERY_WORKER_PROC_ALIVE_TIMEOUT", "600")
# The suite's worker may still be loading models on a busy machine: API requests wait for it
# (tests of the 503 set a short timeout themselves).
os.environ.setdefault("ATELIER_API_QUEUE_TIMEOUT", "600")
# /healthz shows its checks and workers only to the metrics token's holder; the suite's daphne has one.
os.environ.setdefault("ATELIER_METRICS_TOKEN", "suite-metrics-token")
# Dense knowledge search loads an embedding model: off in the suite but where a test turns it on.
os.environ.setdefault("ATELIER_EMBEDDING_MODEL", "")
if os.environ.get("ATELIER_TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["ATELIER_TEST_REDIS_URL"]
else:
    port = _free_port()
    password = secrets.token_hex(16)  # the suite's Redis requires a password, as the embedded one does
    os.environ["ATELIER_TEST_REDIS_PORT"] = str(port)
    os.environ["ATELIER_TEST_REDIS_PASSWORD"] = password
    os.environ["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{port}/0"

"""Where and with what code an image was made, for the asset's lineage."""
from __future__ import annotations

import os
import socket
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
VERSION = "0.1.0"  # kept in step with pyproject.toml


@cache
def code_version() -> str:
    """``ATELIER_CODE_VERSION``, else ``git describe`` of the checkout, else the release number.

    Computed once per process: a worker reports the code it started with.
    """
    if os.environ.get("ATELIER_CODE_VERSION"):
        return os.environ["ATELIER_CODE_VERSION"]
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{VERSION}+g{described}" if described else VERSION


@cache
def worker_host() -> str:
    return socket.gethostname()


# Lineage that stays in the database: the file leaves the server (downloads, the API, approved-set zips).
SERVER_ONLY = ("worker_host", "code_version")


def png_params(params: dict[str, Any]) -> dict[str, Any]:
    """What an image file carries: ``params`` without the worker's host and code version,
    unless ``ATELIER_PNG_LINEAGE=full`` (the asset's row keeps both either way)."""
    from django.conf import settings

    if getattr(settings, "PNG_LINEAGE", "public") == "full":
        return dict(params)
    return {key: value for key, value in params.items() if key not in SERVER_ONLY}

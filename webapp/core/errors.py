"""Failures users see are generic; the detail goes to the log under an id they see too.

Exception text can carry paths, hostnames, SQL or another user's data. The
user gets "... failed (error id 3f9a1c07)"; an admin greps the log for the id.
"""
from __future__ import annotations

import logging
import secrets
from typing import Any


def error_logged(logger: logging.Logger, message: str, *args: Any, exc_info: Any = True) -> str:
    """Log ``message`` (with the current exception by default) under a fresh id; return the id."""
    error_id = secrets.token_hex(4)
    logger.error(f"[error {error_id}] {message}", *args, exc_info=exc_info)
    return error_id


def public_failure(what: str, error_id: str) -> str:
    """The text a user sees for an internal failure of ``what`` (e.g. "The reply")."""
    return f"{what} failed because of an internal error (error id {error_id}); an admin can look it up in the log."

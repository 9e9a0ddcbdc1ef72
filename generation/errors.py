"""The error types shared by both engines."""
from __future__ import annotations


class GenerationError(Exception):
    """A job could not run (model missing, engine failure)."""


class ValidationError(GenerationError, ValueError):
    """A request parameter is out of range.

    ``field`` names the offending parameter so that forms, the API and the
    command line can show the message next to it.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

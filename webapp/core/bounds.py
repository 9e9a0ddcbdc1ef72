"""Length limits on every text a user can send, checked in the services.

Forms check the same numbers first (for a friendly error next to the field),
but services are the rule: the socket, the API and the shell reach them
without a form. One table, so the form, the service and the tests agree.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

TEAM_NAME = 100
PROJECT_NAME = 100
PROJECT_DESCRIPTION = 2000
CONVERSATION_TITLE = 200
MESSAGE_TEXT = 20000
SYSTEM_PROMPT = 8000
PROMPT_TEXT = 20000  # the prompt history records chat and image prompts


def check_lengths(**fields: tuple[str, int]) -> None:
    """``check_lengths(title=(value, 200), ...)``: a ValidationError naming every field over its limit."""
    errors = {
        name: f"At most {limit} characters (this has {len(value)})."
        for name, (value, limit) in fields.items()
        if value is not None and len(value) > limit
    }
    if errors:
        raise ValidationError(errors)

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
REVIEW_NOTE = 2000  # the note on a request for review
REVIEW_COMMENT = 5000  # a comment on a review (and a reply to one)
VERDICT_COMMENT = 5000


def check_lengths(**fields: tuple[str, int]) -> None:
    """``check_lengths(title=(value, 200), ...)``: a ValidationError naming every field over its limit."""
    errors = {
        name: f"At most {limit} characters (this has {len(value)})."
        for name, (value, limit) in fields.items()
        if value is not None and len(value) > limit
    }
    if errors:
        raise ValidationError(errors)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection);
# tab and carriage return let a cell start with one after the spreadsheet trims it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """``value`` safe for a CSV cell: text that a spreadsheet would run gets a leading ``'``.

    Numbers stay numbers (a negative seed is no formula); only text is neutralised.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value

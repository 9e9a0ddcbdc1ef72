"""A template use on its way in: what the chat composer or the studio form carries.

Its own module so that selectors (which parse it) and services (which record it)
both import it without selectors importing services.
"""
from __future__ import annotations

from dataclasses import dataclass

from webapp.prompt_templates.models import TemplateVersion

MAX_VALUE_CHARS = 20_000


@dataclass(frozen=True)
class TemplateUseRequest:
    """A template version and the values a user filled in, carried by the chat composer or studio form."""

    version: TemplateVersion
    values: dict[str, str]

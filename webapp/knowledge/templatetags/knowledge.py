from __future__ import annotations

import re
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CITATION = re.compile(r"\[(\d{1,2})\]")


@register.filter
def cite_links(html: str, message: Any) -> SafeString:
    """A reply's sanitized HTML with each ``[n]`` that names one of its passages linked to that source."""
    sources = {int(p["n"]) for p in (getattr(message, "knowledge", None) or [])}

    def link(found: re.Match[str]) -> str:
        number = int(found.group(1))
        if number not in sources:
            return found.group(0)
        return f'<a class="citation" href="#source-{message.pk}-{number}" data-source="{number}">[{number}]</a>'

    return mark_safe(_CITATION.sub(link, str(html)))  # noqa: S308 (the input is the sanitized reply; numbers only)

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``{{ uses|get_item:message.pk }}``: a dict lookup by a variable key."""
    return mapping.get(key) if mapping else None


@register.simple_tag
def use_version_url(use: Any) -> str:
    """The page of the exact version a reply or job was made from, in the project where it was used."""
    if use is None or use.version is None:
        return ""
    try:
        return reverse("prompt_templates:version", kwargs={
            "project_id": use.project_id, "template_id": use.version.template_id, "number": use.version_number,
        })
    except NoReverseMatch:
        return ""

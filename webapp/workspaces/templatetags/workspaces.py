from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()

# (key, label, url name taking project_id). Apps that are not installed yet
# simply don't show: their URL name does not reverse.
PROJECT_TABS = [
    ("overview", "Overview", "workspaces:project_detail"),
    ("chat", "Chat", "chat:index"),
    ("studio", "Studio", "studio:index"),
    ("gallery", "Gallery", "studio:gallery"),
    ("history", "Prompt history", "prompts:history"),
    ("templates", "Templates", "prompt_templates:list"),
    ("settings", "Settings", "workspaces:project_settings"),
]


@register.inclusion_tag("workspaces/_tabs.html")
def project_tabs(project: Any, active: str = "") -> dict[str, Any]:
    tabs = []
    for key, label, url_name in PROJECT_TABS:
        try:
            url = reverse(url_name, kwargs={"project_id": project.pk})
        except NoReverseMatch:
            continue
        tabs.append({"key": key, "label": label, "url": url})
    return {"tabs": tabs, "active": active}

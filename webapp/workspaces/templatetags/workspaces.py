from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from webapp.workspaces.permissions import membership_may

register = template.Library()

# (key, label, url name taking project_id). Apps that are not installed yet
# simply don't show: their URL name does not reverse.
PROJECT_TABS = [
    ("overview", "Overview", "workspaces:project_detail"),
    ("chat", "Chat", "chat:index"),
    ("studio", "Studio", "studio:index"),
    ("gallery", "Gallery", "studio:gallery"),
    ("reviews", "Reviews", "reviews:project"),
    ("history", "Prompt history", "prompts:history"),
    ("templates", "Templates", "prompt_templates:list"),
    ("knowledge", "Knowledge", "knowledge:index"),
    ("api", "API", "api:keys"),
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


@register.simple_tag
def may(membership: Any, action: str, owner_id: int | None = None) -> bool:
    """``{% may project.membership "chat.stop" m.author_id as may_stop %}``: whether to offer a write.

    The same table the services enforce (``webapp.workspaces.permissions``), so a page offers no button that
    would answer 403, and hides none that would work.
    """
    return membership_may(actor=membership, action=action, owner_id=owner_id)

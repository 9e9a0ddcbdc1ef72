from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.urls import NoReverseMatch, reverse

from webapp.prompts.models import PromptKind, PromptRecord
from webapp.workspaces.selectors import project_get_for_member

# Where "reuse" opens a prompt: the page that owns its kind, with ?reuse=<id>.
REUSE_URL_NAMES = {PromptKind.CHAT: "chat:index", PromptKind.IMAGE: "studio:index"}


def prompt_history_list(
    *,
    project: Any,
    query: str = "",
    author_id: int | None = None,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[PromptRecord]:
    """The project's prompts, newest first, narrowed by text search and filters."""
    records = PromptRecord.objects.filter(project=project).select_related("author")
    if query:
        records = records.filter(text__icontains=query)
    if author_id:
        records = records.filter(author_id=author_id)
    if kind:
        records = records.filter(kind=kind)
    if date_from:
        records = records.filter(created_at__date__gte=date_from)
    if date_to:
        records = records.filter(created_at__date__lte=date_to)
    return records.order_by("-created_at", "-id")


def prompt_get_for_member(*, user: Any, project_id: int, prompt_id: int) -> PromptRecord:
    """A prompt of a project the user belongs to; 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        record = PromptRecord.objects.get(pk=prompt_id, project=project)
    except (PromptRecord.DoesNotExist, ValueError, TypeError):
        raise Http404("No such prompt") from None
    record.project = project
    return record


def prompt_reuse_url(*, record: PromptRecord) -> str | None:
    try:
        base = reverse(REUSE_URL_NAMES[PromptKind(record.kind)], kwargs={"project_id": record.project_id})
    except NoReverseMatch:
        return None
    return f"{base}?reuse={record.pk}"

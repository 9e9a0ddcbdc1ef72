from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string

from webapp.activity import selectors
from webapp.core.access import LiveAccessMixin
from webapp.usage.events import activity_group_name
from webapp.workspaces.selectors import project_get_for_member


class ActivityConsumer(LiveAccessMixin, AsyncWebsocketConsumer):
    """The project's activity feed, live, at ``/ws/projects/<id>/activity/``: each finished job arrives as
    an HTML fragment that htmx's ws extension adds to the top of the feed, and so does each audit entry the
    feed shows. Members only (any role); the
    group comes from the URL's project after the membership check; access is re-checked before events."""

    def access_reload(self) -> bool:
        try:
            self.project = project_get_for_member(
                user=self.scope["user"], project_id=self.scope["url_route"]["kwargs"]["project_id"])
        except Http404:
            return False
        return True

    def access_groups(self) -> list[str]:
        return [activity_group_name(project_id=self.project.pk)]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page only listens; anything it sends is ignored."""

    async def activity_record(self, event: dict[str, Any]) -> None:
        """A finished job's usage record."""
        await self._forward(selectors.activity_item_for_record, record_id=event["record_id"])

    async def activity_entry(self, event: dict[str, Any]) -> None:
        """An audit entry the feed shows (a review asked for or decided, an export, a template published)."""
        await self._forward(selectors.activity_item_for_entry, entry_id=event["entry_id"])

    async def _forward(self, item_get: Callable[..., Any], **which: int) -> None:
        """Re-check access, then send the item as the fragment for the top of the feed (nothing if it is gone)."""
        if not await self.access_allowed():
            return
        html = await database_sync_to_async(self._render)(item_get, which)
        if html:
            await self.send(text_data=html)

    def _render(self, item_get: Callable[..., Any], which: dict[str, int]) -> str:
        item = item_get(project=self.project, **which)
        if item is None:
            return ""
        return render_to_string("activity/_live.html", {"item": item, "project": self.project})

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string

from webapp.core.access import LiveAccessMixin
from webapp.reviews import selectors
from webapp.reviews.events import inbox_group_name
from webapp.workspaces.selectors import project_get_for_member


class InboxConsumer(LiveAccessMixin, AsyncWebsocketConsumer):
    """One project's review events for the user's inbox and nav badge, live, at ``/ws/projects/<id>/reviews/``.

    One group per (project, user). An event names only the review that
    changed; the consumer re-reads the user's inbox through membership-scoped
    selectors, so a review in a team the user has left never reaches them.
    Leaving the project, logging out or changing the password closes it
    (``webapp.core.access``). A page outside any project opens one per project.
    """

    def access_reload(self) -> bool:
        try:
            self.project = project_get_for_member(
                user=self.scope["user"], project_id=self.scope["url_route"]["kwargs"]["project_id"]
            )
        except Http404:
            return False
        return True

    def access_groups(self) -> list[str]:
        return [inbox_group_name(project_id=self.project.pk, user_id=self.scope["user"].pk)]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page only listens; anything it sends is ignored."""

    async def reviews_changed(self, event: dict[str, Any]) -> None:
        if not await self.access_allowed():
            return
        await self.send(text_data=await database_sync_to_async(self._render)())

    def _render(self) -> str:
        user = self.scope["user"]
        context = {
            "waiting": selectors.inbox_waiting(user=user),
            "submitted": selectors.inbox_submitted(user=user),
            "oob": True,
        }
        return render_to_string("reviews/_inbox_event.html", context)

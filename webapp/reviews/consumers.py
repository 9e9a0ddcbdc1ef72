from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from webapp.core.access import LiveAccessMixin
from webapp.reviews import selectors
from webapp.reviews.events import inbox_group_name


class InboxConsumer(LiveAccessMixin, AsyncWebsocketConsumer):
    """The user's review inbox and nav badge, live.

    One group per user. An event names only the review that changed; the
    consumer re-reads the inbox through membership-scoped selectors, so a
    review in a team the user has left never reaches them. Logging out or
    changing the password closes it (``webapp.core.access``).
    """

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4404)
            return
        self.group = inbox_group_name(user_id=user.pk)
        await self.access_join()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    def access_reload(self) -> bool:
        # The inbox spans every team of the user and is re-read through memberships
        # on each event; only the session itself can end access here.
        return True

    async def disconnect(self, code: int) -> None:
        await self.access_leave()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

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

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string

from webapp.core.access import LiveAccessMixin
from webapp.studio import selectors
from webapp.studio.events import studio_group_name
from webapp.workspaces.selectors import project_get_for_member


class StudioConsumer(LiveAccessMixin, AsyncWebsocketConsumer):
    """Live job cards for one user in one project, at ``/ws/projects/<id>/studio/``.

    Authenticated members only (the origin is checked by the ASGI stack);
    the group comes from the URL's project and the session's user. Events
    are forwarded as HTML fragments that htmx's ws extension swaps by id.
    Access is re-checked before events (``webapp.core.access``).
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
        return [studio_group_name(project_id=self.project.pk, user_id=self.scope["user"].pk)]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page only listens; anything it sends is ignored."""

    async def studio_progress(self, event: dict[str, Any]) -> None:
        if not await self.access_allowed():
            return
        await self.send(text_data=render_to_string("studio/_job_progress.html", {"event": event}))

    async def studio_job(self, event: dict[str, Any]) -> None:
        if not await self.access_allowed():
            return
        html = await database_sync_to_async(self._render_job)(event["job_id"])
        if html:
            await self.send(text_data=html)

    def _render_job(self, job_id: int) -> str:
        user = self.scope["user"]
        try:
            job = selectors.job_get_for_member(user=user, project_id=self.project.pk, job_id=job_id)
        except Http404:  # membership ended while connected
            return ""
        queue = selectors.job_queue_for_user(project=job.project, user=user)
        context = {"job": job, "project": job.project, "queue": queue, "user": user, "oob": True}
        return render_to_string("studio/_job_event.html", context)

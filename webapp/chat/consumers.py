"""The conversation socket at ``/ws/projects/<id>/chat/<conversation>/``: live reply chunks out, resumes in.

Writes (send, stop, regenerate, edit) go over HTTP, as the page posts them; the
socket only carries what the worker streams.

Client -> server (JSON):
  {"type": "resume", "message": <id>, "after": <last seq held>}   replay from the log, then live
Server -> client: {"type": "chunk"|"end", "message", "seq", ...} (see ``stream``),
  {"type": "created", "message", "prompt"} when anyone queues a reply here, {"type": "error", "error"}.
"""
from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from webapp.chat import selectors, stream
from webapp.chat.models import Message
from webapp.core.access import LiveAccessMixin
from webapp.core.ratelimit import TokenBucket

CLOSE_TOO_MANY = 4429
# Per connection: a page sends a few messages a minute (one resume per live reply,
# more after a reconnect); these leave ample room and stop a flood.
MESSAGES_PER_SECOND, MESSAGES_BURST = 5.0, 20
RESUMES_PER_SECOND, RESUMES_BURST = 2.0, 10
MAX_FRAME_CHARS = 64_000  # far above any resume request
# Refusals in a row before the socket is closed (a client that ignores the errors).
MAX_REFUSALS = 50


class ConversationConsumer(LiveAccessMixin, AsyncJsonWebsocketConsumer):
    """Access is checked once per request and, at most a second apart, before events
    (see ``webapp.core.access``): a removed member's socket closes."""

    conversation: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: dict[int, int] = {}
        self.messages_limit = TokenBucket(rate=MESSAGES_PER_SECOND, burst=MESSAGES_BURST)
        self.resumes_limit = TokenBucket(rate=RESUMES_PER_SECOND, burst=RESUMES_BURST)
        self.refusals = 0

    def access_reload(self) -> bool:
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            self.conversation = selectors.conversation_get_for_member(
                user=self.scope["user"], project_id=kwargs["project_id"], conversation_id=kwargs["conversation_id"]
            )
        except Http404:
            return False
        return True

    def access_groups(self) -> list[str]:
        return [self.conversation.group_name]  # derived here, never taken from the client

    async def _refuse(self, error: str) -> None:
        self.refusals += 1
        if self.refusals > MAX_REFUSALS:
            await self.close(code=CLOSE_TOO_MANY)
            return
        await self.send_json({"type": "error", "error": error})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Rate and size limits come first, before any database work."""
        if not self.messages_limit.take():
            await self._refuse("Too many requests on this connection: slow down.")
            return
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self._refuse(f"Messages are text of at most {MAX_FRAME_CHARS} characters.")
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self._refuse("invalid JSON")
            return
        self.refusals = 0
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not await self.access_allowed(fresh=True):  # the one access check of this request
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind != "resume":
            await self.send_json({"type": "error", "error": "unknown request (writes go over HTTP)"})
        elif not self.resumes_limit.take():
            await self._refuse("Too many resume requests: slow down.")
        else:
            await self._resume(content)

    async def chat_event(self, message: dict[str, Any]) -> None:
        """A live chunk or end from the worker; ones this socket already sent are dropped."""
        if not await self.access_allowed():
            return
        event = message["event"]
        if event["seq"] <= self.sent.get(event["message"], 0):
            return
        self.sent[event["message"]] = event["seq"]
        await self.send_json(event)

    async def chat_created(self, message: dict[str, Any]) -> None:
        """Someone queued a reply here: pages that don't show it yet can fetch the thread."""
        if not await self.access_allowed():
            return
        await self.send_json({"type": "created", "message": message["message"], "prompt": message["prompt"]})

    async def _resume(self, content: dict[str, Any]) -> None:
        try:
            message: Message = await database_sync_to_async(selectors.conversation_message_get)(
                conversation=self.conversation, message_id=int(content.get("message") or 0)
            )
        except (Http404, TypeError, ValueError):
            await self.send_json({"type": "error", "error": "no such message"})
            return
        try:
            after = max(0, int(content.get("after") or 0))
        except (TypeError, ValueError):
            after = 0
        events = await sync_to_async(stream.log_read, thread_sensitive=False)(message=message, after=after)
        for event in events:
            await self.send_json(event)
        if events:
            self.sent[message.pk] = max(self.sent.get(message.pk, 0), events[-1]["seq"])

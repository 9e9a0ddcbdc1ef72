"""The conversation socket: live reply chunks out; resume, stop and send in.

Client -> server (JSON):
  {"type": "resume", "message": <id>, "after": <last seq held>}   replay from the log, then live
  {"type": "stop", "message": <id>}                                 members only
  {"type": "send", "text": ..., "parent": <id or null>, ...settings} members only
Server -> client: {"type": "chunk"|"end", "message", "seq", ...} (see ``stream``),
  {"type": "queued", "message", "prompt"} after a send, {"type": "created", "message", "prompt"}
  when anyone queues a reply here, {"type": "error", "error"}.
"""
from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from webapp.chat import selectors, services, stream
from webapp.chat.forms import ComposerForm, settings_initial
from webapp.chat.models import Conversation, Message
from webapp.core.access import LiveAccessMixin
from webapp.core.http import AnyUser
from webapp.core.ratelimit import TokenBucket
from webapp.workspaces.selectors import project_get_for_member

CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429
# Per connection: a page sends a few messages a minute (a send, a stop, one resume
# per live reply after a reconnect); these leave ample room and stop a flood.
MESSAGES_PER_SECOND, MESSAGES_BURST = 5.0, 20
RESUMES_PER_SECOND, RESUMES_BURST = 2.0, 10
MAX_FRAME_CHARS = 64_000  # the longest prompt and its settings fit several times over
# Refusals in a row before the socket is closed (a client that ignores the errors).
MAX_REFUSALS = 50


class ConversationConsumer(LiveAccessMixin, AsyncJsonWebsocketConsumer):
    """Access is re-checked on every request and, at most a second apart, before events
    (see ``webapp.core.access``): a removed member's socket closes, a demoted one reads only."""

    async def connect(self) -> None:
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        try:
            self.conversation = await database_sync_to_async(selectors.conversation_get_for_member)(
                user=self.scope.get("user"), conversation_id=conversation_id
            )
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = self.conversation.group_name  # derived here, never taken from the client
        self.sent: dict[int, int] = {}
        self.messages_limit = TokenBucket(rate=MESSAGES_PER_SECOND, burst=MESSAGES_BURST)
        self.resumes_limit = TokenBucket(rate=RESUMES_PER_SECOND, burst=RESUMES_BURST)
        self.refusals = 0
        await self.access_join()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.access_leave()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    def access_reload(self) -> bool:
        try:
            project = project_get_for_member(user=self.scope["user"], project_id=self.conversation.project_id)
        except Http404:
            return False
        self.conversation.project = project
        self.can_write = project.membership.can_write
        return True

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
        if not await self.access_allowed(fresh=True):
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resume" and not self.resumes_limit.take():
            await self._refuse("Too many resume requests: slow down.")
        elif kind == "resume":
            await self._resume(content)
        elif kind == "stop":
            refused = await database_sync_to_async(_stop_sync, thread_sensitive=False)(
                self.conversation.pk, self.scope["user"], content
            )
            if refused is not None:
                await self.send_json(refused)
        elif kind == "send":
            # Not thread-sensitive: one person's send (database writes, the enqueue) must
            # not hold up every other socket's database calls in this process.
            answer = await database_sync_to_async(_send_sync, thread_sensitive=False)(
                self.conversation.pk, self.scope["user"], content
            )
            await self.send_json(answer)
        else:
            await self.send_json({"type": "error", "error": "unknown request"})

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

    async def _message(self, content: dict[str, Any]) -> Any:
        try:
            return await database_sync_to_async(selectors.conversation_message_get)(
                conversation=self.conversation, message_id=int(content.get("message") or 0)
            )
        except (Http404, TypeError, ValueError):
            await self.send_json({"type": "error", "error": "no such message"})
            return None

    async def _resume(self, content: dict[str, Any]) -> None:
        message = await self._message(content)
        if message is None:
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


def _conversation(conversation_id: int, user: AnyUser) -> Conversation:
    """The conversation as the user may see it now: membership is checked on every write, not only at connect."""
    return selectors.conversation_get_for_member(user=user, conversation_id=conversation_id)


def _refused(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, Http404):
        return {"type": "error", "error": "no such conversation"}
    return {"type": "error", "error": str(exc) or "not allowed"}


def _stop_sync(conversation_id: int, user: AnyUser, content: dict[str, Any]) -> dict[str, Any] | None:
    """Stop a reply; an error to send back, or None when the stop went out."""
    try:
        conversation = _conversation(conversation_id, user)
        message: Message = selectors.conversation_message_get(
            conversation=conversation, message_id=int(content.get("message") or 0)
        )
        services.reply_stop(message=message, membership=conversation.project.membership)
    except (Http404, TypeError, ValueError):
        return {"type": "error", "error": "no such message"}
    except PermissionDenied as exc:
        return _refused(exc)
    return None


def _send_sync(conversation_id: int, user: AnyUser, content: dict[str, Any]) -> dict[str, Any]:
    """Validate a send from the socket exactly like the composer form, then send."""
    try:
        conversation = _conversation(conversation_id, user)
    except Http404 as exc:
        return _refused(exc)
    base = selectors.conversation_settings(conversation=conversation)
    data = {**settings_initial(base), **{k: v for k, v in content.items() if k != "type"}}
    if isinstance(data.get("stop"), list):
        data["stop"] = "\n".join(data["stop"])
    data = {k: ("" if v is None else v) for k, v in data.items()}
    form = ComposerForm(data, base=base)
    if not form.is_valid():
        return {"type": "error", "error": "invalid", "fields": {k: [str(e) for e in v] for k, v in form.errors.items()}}
    try:
        parent = None
        if form.cleaned_data["parent"]:
            parent = selectors.conversation_message_get(conversation=conversation, message_id=form.cleaned_data["parent"])
        reply = services.message_send(
            conversation=conversation, membership=conversation.project.membership, text=form.cleaned_data["text"],
            parent=parent, reply_settings=form.cleaned_data["reply_settings"],
        )
    except PermissionDenied as exc:
        return _refused(exc)
    except (ValidationError, Http404) as exc:
        return {"type": "error", "error": " ".join(getattr(exc, "messages", [str(exc)]))}
    return {"type": "queued", "message": reply.pk, "prompt": reply.parent_id}

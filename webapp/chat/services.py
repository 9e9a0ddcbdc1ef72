"""Writes: conversations, messages, and the life of a reply from queued to done.

The web side creates rows and enqueues after commit; the worker side
(``reply_run``) decodes, streams chunks (see ``stream``) and stores the end.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp.chat import stream
from webapp.chat.markdown import render_markdown
from webapp.chat.models import Conversation, Message, Role, Status
from webapp.chat.params import ReplySettings, settings_validate
from webapp.core import bounds
from webapp.core.errors import error_logged, public_failure
from webapp.prompts.services import prompt_record_create

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New conversation"
HEARTBEAT_SECONDS = 2.0


def _stale_after() -> float:
    return float(getattr(settings, "CHAT_STALE_AFTER", 60))


# --- Conversations ----------------------------------------------------------------


def conversation_create(*, project: Any, author: Any, title: str = "", reply_settings: ReplySettings) -> Conversation:
    """A new, empty conversation with ``reply_settings`` as its defaults."""
    bounds.check_lengths(title=(title.strip(), bounds.CONVERSATION_TITLE))
    _settings_check(reply_settings)
    return Conversation.objects.create(
        project=project,
        created_by=author,
        title=title.strip() or DEFAULT_TITLE,
        model_name=reply_settings.model_name,
        system_prompt=reply_settings.system_prompt,
        params=reply_settings.params,
    )


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title:
        raise ValidationError({"title": "A conversation needs a title."})
    bounds.check_lengths(title=(title, bounds.CONVERSATION_TITLE))
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_settings_update(*, conversation: Conversation, reply_settings: ReplySettings) -> Conversation:
    """Change the defaults that the next messages use. Sent replies keep their own snapshot."""
    _settings_check(reply_settings)
    conversation.model_name = reply_settings.model_name
    conversation.system_prompt = reply_settings.system_prompt
    conversation.params = reply_settings.params
    conversation.save(update_fields=["model_name", "system_prompt", "params", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete the conversation; replies still decoding get a stop request after commit."""
    live = list(conversation.messages.filter(status__in=[Status.QUEUED, Status.STREAMING]))
    conversation.delete()
    for message in live:
        transaction.on_commit(partial(stream.stop_request, message=message))


# --- Sending ------------------------------------------------------------------------


def _settings_check(reply_settings: ReplySettings) -> None:
    """The engine's checks, and the system prompt's length (the form calls it ``system``)."""
    bounds.check_lengths(system=(reply_settings.system_prompt, bounds.SYSTEM_PROMPT))
    settings_validate(reply_settings)


def _check_parent(*, conversation: Conversation, parent: Message | None, role: str) -> None:
    if parent is None:
        return
    if parent.conversation_id != conversation.pk:
        raise ValidationError("That message belongs to another conversation.")
    if parent.role == role:
        raise ValidationError("Messages alternate between the user and the assistant.")
    if parent.is_live:
        raise ValidationError("Wait for the reply to finish, or stop it, before sending.")


def _enqueue(reply: Message) -> None:
    """After commit: the task to the ``text`` queue, and a note to everyone watching the conversation."""
    from webapp.chat.tasks import generate_reply
    from webapp.core.events import get_publisher

    group = reply.conversation.group_name
    created = {"type": "chat.created", "message": reply.pk, "prompt": reply.parent_id}
    transaction.on_commit(lambda: generate_reply.apply_async(args=[reply.pk], queue="text"))
    transaction.on_commit(lambda: get_publisher().publish(group, created))


def _reply_create(*, conversation: Conversation, parent: Message, author: Any, reply_settings: ReplySettings) -> Message:
    reply = Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Role.ASSISTANT,
        author=author,
        status=Status.QUEUED,
        model_name=reply_settings.model_name,
        system_prompt=reply_settings.system_prompt,
        params=reply_settings.params,
        prompt=parent.prompt,
    )
    conversation.save(update_fields=["updated_at"])
    _enqueue(reply)
    return reply


def _prompt_create(
    *, conversation: Conversation, author: Any, parent: Message | None, text: str, reply_settings: ReplySettings
) -> Message:
    if not text.strip():
        raise ValidationError({"text": "Write a message first."})
    bounds.check_lengths(text=(text, bounds.MESSAGE_TEXT))
    _settings_check(reply_settings)
    _check_parent(conversation=conversation, parent=parent, role=Role.USER)
    record = prompt_record_create(
        project=conversation.project,
        author=author,
        kind="chat",
        text=text,
        params={"system": reply_settings.system_prompt, **reply_settings.params},
        model_name=reply_settings.model_name,
    )
    if conversation.title == DEFAULT_TITLE and parent is None and not conversation.messages.exists():
        conversation.title = " ".join(text.split())[:60]
        conversation.save(update_fields=["title", "updated_at"])
    return Message.objects.create(
        conversation=conversation, parent=parent, role=Role.USER, author=author, text=text, prompt=record,
        html=render_markdown(text),
    )


@transaction.atomic
def message_send(
    *, conversation: Conversation, author: Any, text: str, parent: Message | None, reply_settings: ReplySettings
) -> Message:
    """Create the user's message under ``parent`` and a queued reply; enqueue it after commit.

    Records the prompt in the project's history in the same transaction.
    Returns the reply. Raises ``ValidationError`` for an empty text or a
    parent that is not a finished reply of this conversation, and
    ``generation.errors.ValidationError`` for bad settings; nothing is enqueued then.
    """
    prompt = _prompt_create(conversation=conversation, author=author, parent=parent, text=text, reply_settings=reply_settings)
    return _reply_create(conversation=conversation, parent=prompt, author=author, reply_settings=reply_settings)


@transaction.atomic
def message_edit_resend(*, message: Message, author: Any, text: str, reply_settings: ReplySettings) -> Message:
    """Branch: a new user message beside ``message`` (same parent) and a queued reply to it.

    Only the prompt's author may do it: anyone else would put words in their mouth.
    """
    if message.role != Role.USER or message.author_id != getattr(author, "pk", None):
        raise ValidationError("Only your own prompts can be edited and resent.")
    prompt = _prompt_create(
        conversation=message.conversation, author=author, parent=message.parent, text=text, reply_settings=reply_settings
    )
    return _reply_create(conversation=message.conversation, parent=prompt, author=author, reply_settings=reply_settings)


@transaction.atomic
def reply_regenerate(*, message: Message, author: Any, reply_settings: ReplySettings) -> Message:
    """A new queued reply beside ``message``, answering the same prompt."""
    if message.role != Role.ASSISTANT or message.parent is None:
        raise ValidationError("Only replies can be regenerated.")
    _settings_check(reply_settings)
    return _reply_create(
        conversation=message.conversation, parent=message.parent, author=author, reply_settings=reply_settings
    )


def reply_stop(*, message: Message) -> None:
    """Ask the worker to stop ``message``; one still in the queue ends "stopped" at once.

    The worker keeps the text decoded so far and marks the reply "stopped".
    A finished reply is left as it is.
    """
    if not message.is_live:
        return
    stream.stop_request(message=message)
    stopped = Message.objects.filter(pk=message.pk, status=Status.QUEUED).update(
        status=Status.STOPPED, finish_reason="cancelled", finished_at=timezone.now()
    )
    if stopped:
        group = message.conversation.group_name
        transaction.on_commit(lambda: stream.end_publish(message=message, group=group, status=Status.STOPPED))


# --- The worker side --------------------------------------------------------------


def reply_history(*, message: Message) -> list[Message]:
    """The path from the root to the prompt that ``message`` answers, oldest first."""
    by_id = {m.pk: m for m in message.conversation.messages.all()}
    path: list[Message] = []
    current = by_id.get(message.parent_id) if message.parent_id else None
    while current is not None:
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return path[::-1]


def _text_request(message: Message) -> Any:
    from generation.text.types import ChatMessage, DecodingParams, TextRequest

    turns = tuple(
        ChatMessage(role=m.role, content=m.text)
        for m in reply_history(message=message)
        if m.role == Role.USER or m.text.strip()
    )
    return TextRequest(
        messages=turns,
        model=message.model_name,
        system=message.system_prompt or None,
        params=DecodingParams.from_dict(message.params),
    )


_FINISH_STATUS = {"stop": Status.DONE, "length": Status.DONE, "cancelled": Status.STOPPED, "error": Status.FAILED}


def reply_run(*, message_id: int, worker: str = "") -> Message | None:
    """Decode a queued reply, streaming chunks as they come, and store how it ended.

    Claims the row (queued -> streaming) first, so a redelivered task or a
    reply stopped while queued does nothing and returns ``None``. While
    decoding it touches the row every ``HEARTBEAT_SECONDS`` with the text so
    far; if the row is gone or no longer streaming (deleted, swept) it stops.
    Engine failures end as "failed" with the partial text and the reason.
    """
    from generation.errors import ValidationError as GenerationValidationError
    from generation.text.engine import generate_text
    from generation.text.loading import load_text_model
    from generation.text.types import TextFinal

    model_name = Message.objects.filter(pk=message_id, status=Status.QUEUED).values_list("model_name", flat=True).first()
    if model_name is None:
        return None
    # Load before claiming: loading a big model may take longer than the heartbeat
    # allows, and a queued reply is never swept, a streaming one is.
    load_text_model(model_name)
    now = timezone.now()
    claimed = Message.objects.filter(pk=message_id, status=Status.QUEUED).update(
        status=Status.STREAMING, started_at=now, heartbeat_at=now, worker=worker[:200]
    )
    if not claimed:
        return None
    message = Message.objects.select_related("conversation").get(pk=message_id)
    out = stream.ReplyStream(message=message, group=message.conversation.group_name)
    stop_flag = stream.StopWatch(message=message)
    lost = {"value": False}

    def should_stop() -> bool:
        return lost["value"] or stop_flag()

    final = None
    error = ""
    try:
        next_beat = timezone.now() + timedelta(seconds=HEARTBEAT_SECONDS)
        for item in generate_text(_text_request(message), should_stop=should_stop):
            if isinstance(item, TextFinal):
                final = item
                break
            out.write(item.text)
            if timezone.now() >= next_beat:
                next_beat = timezone.now() + timedelta(seconds=HEARTBEAT_SECONDS)
                out.flush()
                alive = Message.objects.filter(pk=message.pk, status=Status.STREAMING).update(
                    heartbeat_at=timezone.now(), text=out.text
                )
                lost["value"] = not alive
    except GenerationValidationError as exc:
        error = f"{exc.field}: {exc.message}"
    except Exception:
        error = public_failure("The reply", error_logged(logger, "reply %s failed", message.pk))
    finally:
        stop_flag.close()
    out.flush()
    values: dict[str, Any] = {
        "text": out.text, "html": render_markdown(out.text), "finished_at": timezone.now(), "heartbeat_at": timezone.now()
    }
    if final is not None:
        status = _FINISH_STATUS.get(final.finish_reason, Status.DONE)
        values.update(
            status=status,
            error=final.error or "",
            finish_reason=final.finish_reason,
            prompt_tokens=final.prompt_tokens,
            completion_tokens=final.completion_tokens,
            time_to_first_token=final.time_to_first_token,
            tokens_per_second=final.tokens_per_second,
            elapsed=final.elapsed,
            model_name=final.model,
            params=final.params.to_dict(),
        )
    else:
        status = Status.FAILED
        values.update(status=status, error=error or "The engine ended without a result.", finish_reason="error")
    try:
        updated = Message.objects.filter(pk=message.pk).update(**values)
        if updated:
            out.end(status=status)
    finally:
        out.close()
    if not updated:
        return None  # deleted while decoding
    message.refresh_from_db()
    return message


def reply_fail(*, message_id: int, reason: str) -> None:
    """Mark a reply that is still queued or streaming as failed, keeping the text streamed so far."""
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or not message.is_live:
        return
    _fail(message=message, reason=reason)


def _fail(*, message: Message, reason: str) -> bool:
    logged = stream.log_text(message=message)
    text = logged if len(logged) > len(message.text) else message.text
    updated = Message.objects.filter(pk=message.pk, status__in=[Status.QUEUED, Status.STREAMING]).update(
        status=Status.FAILED, text=text, html=render_markdown(text), error=reason, finish_reason="error",
        finished_at=timezone.now(),
    )
    if updated:
        group = message.conversation.group_name
        transaction.on_commit(lambda: stream.end_publish(message=message, group=group, status=Status.FAILED))
    return bool(updated)


def replies_fail_stale(*, conversation: Conversation | None = None, worker: str = "") -> int:
    """Fail replies whose worker is gone: no heartbeat for ``CHAT_STALE_AFTER`` seconds, or
    streaming on ``worker`` (a worker that starts under a name owns none yet).

    Runs when a worker starts and when a conversation is viewed. Returns how many it failed.
    """

    stale_after = _stale_after()
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    dead = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    if worker:
        dead |= Q(worker=worker)
    candidates = Message.objects.filter(dead, status=Status.STREAMING).select_related("conversation")
    if conversation is not None:
        candidates = candidates.filter(conversation=conversation)
    reason = f"The worker stopped responding (no heartbeat for {stale_after:.0f} s); the reply is incomplete."
    return sum(_fail(message=message, reason=reason) for message in candidates)


@transaction.atomic
def conversation_start(*, project: Any, author: Any, text: str, reply_settings: ReplySettings) -> Message:
    """A new conversation whose first prompt is ``text``; returns the queued reply."""
    conversation = conversation_create(project=project, author=author, reply_settings=reply_settings)
    return message_send(conversation=conversation, author=author, text=text, parent=None, reply_settings=reply_settings)

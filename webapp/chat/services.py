"""Writes: conversations, messages, and the life of a reply from queued to done.

A reply is a job of kind ``chat.reply`` (see ``webapp.core.jobs``, which owns
claiming, the heartbeat, the stop watch and the sweep). The web side creates
rows and enqueues by task name after commit; the worker side (``reply_run``)
decodes, streams chunks (see ``stream``) and stores the end.

Every write an actor makes takes the actor's ``Membership`` (``actor``) and
asks the one gate (``webapp.workspaces.permissions``); views and consumers
don't check a second time.
"""
from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.chat import stream
from webapp.chat.markdown import render_markdown
from webapp.chat.models import Conversation, Message, Role
from webapp.chat.params import ReplySettings, settings_validate
from webapp.core import bounds, jobs
from webapp.core.events import get_publisher
from webapp.core.jobs import JobKind, JobStatus
from webapp.core.textjobs import TextJobKind, TextOutcome, text_job_run
from webapp.knowledge.context import context_render, context_template, knowledge_mentions, knowledge_passages
from webapp.prompt_templates.services import template_use_record
from webapp.prompt_templates.uses import TemplateUseRequest
from webapp.prompts.services import prompt_record_create, prompt_record_sources
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_require

if TYPE_CHECKING:
    from generation.text.types import TextRequest

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "New conversation"

REPLY = JobKind(
    name="chat.reply",
    model=Message,
    task_name="chat.generate_reply",
    queue="text",
    publish=stream.reply_state_publish,
    end_values=stream.reply_end_values,
    owner="author_id",
    scope={"role": Role.ASSISTANT},
)


def _settings_check(reply_settings: ReplySettings) -> None:
    """The engine's checks, and the system prompt's length (the form calls it ``system``)."""
    bounds.check_lengths(system=(reply_settings.system_prompt, bounds.SYSTEM_PROMPT))
    settings_validate(reply_settings)


# --- Conversations ----------------------------------------------------------------


def conversation_create(
    *, project: Project, actor: Membership, title: str = "", reply_settings: ReplySettings
) -> Conversation:
    """A new, empty conversation with ``reply_settings`` as its defaults (``chat.send``)."""
    membership_require(actor=actor, action="chat.send", project=project)
    bounds.check_lengths(title=(title.strip(), bounds.CONVERSATION_TITLE))
    _settings_check(reply_settings)
    return Conversation.objects.create(
        project=project,
        created_by=actor.user,
        title=title.strip() or DEFAULT_TITLE,
        model_name=reply_settings.model_name,
        system_prompt=reply_settings.system_prompt,
        params=reply_settings.params,
        use_knowledge=reply_settings.use_knowledge,
    )


def conversation_rename(*, conversation: Conversation, actor: Membership, title: str) -> Conversation:
    membership_require(actor=actor, action="chat.edit", project=conversation.project)
    title = title.strip()
    if not title:
        raise ValidationError({"title": "A conversation needs a title."})
    bounds.check_lengths(title=(title, bounds.CONVERSATION_TITLE))
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_settings_update(
    *, conversation: Conversation, actor: Membership, reply_settings: ReplySettings
) -> Conversation:
    """Change the defaults that the next messages use. Sent replies keep their own snapshot."""
    membership_require(actor=actor, action="chat.edit", project=conversation.project)
    _settings_check(reply_settings)
    conversation.model_name = reply_settings.model_name
    conversation.system_prompt = reply_settings.system_prompt
    conversation.params = reply_settings.params
    conversation.use_knowledge = reply_settings.use_knowledge
    conversation.save(update_fields=["model_name", "system_prompt", "params", "use_knowledge", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation, actor: Membership) -> None:
    """Delete the conversation; replies still decoding get a stop request after commit.

    ``chat.delete``: whoever started it, or an admin or owner (issue 23 #11).
    """
    membership_require(
        actor=actor, action="chat.delete", project=conversation.project, owner_id=conversation.created_by_id
    )
    live = list(conversation.messages.filter(status__in=jobs.LIVE_STATUSES))
    conversation.delete()
    for message in live:
        transaction.on_commit(partial(jobs.job_stop_request, kind=REPLY, job=message, reason="Deleted."))


# --- Sending ------------------------------------------------------------------------


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
    group = reply.conversation.group_name
    created = {"type": "chat.created", "message": reply.pk, "prompt": reply.parent_id}
    jobs.job_enqueue(kind=REPLY, job_id=reply.pk)
    transaction.on_commit(lambda: get_publisher().publish(group, created))


def _reply_create(
    *, conversation: Conversation, parent: Message, actor: Membership, reply_settings: ReplySettings
) -> Message:
    # Inside the caller's transaction: past the quota the prompt written just before goes too.
    # Counted with the API's text jobs: one person's share of the ``text`` queue, however they send.
    jobs.job_quota_check_queue(
        queue=REPLY.queue, owner_id=actor.user.pk, limit=settings.MAX_LIVE_REPLIES,
        what="replies queued or being written", lock=actor.user,
        admit=jobs.Admission(project=conversation.project, user_id=actor.user.pk),  # budgets
    )
    knowledge = None
    # "#handbook" in the prompt: knowledge from the documents named, whatever the setting says.
    chosen = knowledge_mentions(project_id=conversation.project_id, text=parent.text)
    if reply_settings.use_knowledge or chosen:  # BM25 in the database: milliseconds, so the web process does it
        knowledge = knowledge_passages(project_id=conversation.project_id, question=parent.text,
                                       document_ids=chosen or None)
        if parent.prompt_id is not None:  # the prompt history shows what the reply read
            prompt_record_sources(record_id=parent.prompt_id, sources=[
                {key: passage[key] for key in ("n", "title", "page", "heading", "passage_id", "document_id")}
                for passage in knowledge])
    reply = Message.objects.create(
        knowledge=knowledge,
        conversation=conversation,
        parent=parent,
        role=Role.ASSISTANT,
        author=actor.user,
        status=JobStatus.QUEUED,
        model_name=reply_settings.model_name,
        system_prompt=reply_settings.system_prompt,
        params=reply_settings.params,
        prompt=parent.prompt,
    )
    conversation.save(update_fields=["updated_at"])
    _enqueue(reply)
    return reply


def _prompt_create(
    *, conversation: Conversation, actor: Membership, parent: Message | None, text: str,
    reply_settings: ReplySettings,
) -> Message:
    if not text.strip():
        raise ValidationError({"text": "Write a message first."})
    bounds.check_lengths(text=(text, bounds.MESSAGE_TEXT))
    _settings_check(reply_settings)
    _check_parent(conversation=conversation, parent=parent, role=Role.USER)
    author = actor.user
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
    *,
    conversation: Conversation,
    actor: Membership,
    text: str,
    parent: Message | None,
    reply_settings: ReplySettings,
    template_use: TemplateUseRequest | None = None,
) -> Message:
    """Create the user's message under ``parent`` and a queued reply; enqueue it after commit.

    Records the prompt in the project's history in the same transaction.
    Returns the reply. Raises PermissionDenied unless ``actor`` may ``chat.send``
    in the project, ``ValidationError`` for an empty text or a parent that is not
    a finished reply of this conversation,
    ``generation.errors.ValidationError`` for bad settings, and
    ``jobs.QuotaExceeded`` (a ``ValidationError``) when the author already has
    ``MAX_LIVE_REPLIES`` replies queued or decoding; nothing is written or enqueued then.
    ``template_use`` (from the composer's template picker) is recorded as the reply's lineage.
    """
    membership_require(actor=actor, action="chat.send", project=conversation.project)
    prompt = _prompt_create(
        conversation=conversation, actor=actor, parent=parent, text=text, reply_settings=reply_settings
    )
    reply = _reply_create(conversation=conversation, parent=prompt, actor=actor, reply_settings=reply_settings)
    if template_use is not None:
        template_use_record(
            use=template_use, project=conversation.project, user=actor.user, output_kind="reply", output_id=reply.pk
        )
    return reply


@transaction.atomic
def message_edit_resend(
    *, message: Message, actor: Membership, text: str, reply_settings: ReplySettings
) -> Message:
    """Branch: a new user message beside ``message`` (same parent) and a queued reply to it.

    Only the prompt's author may do it (``chat.resend``): anyone else would put words in their mouth.
    """
    conversation = message.conversation
    membership_require(actor=actor, action="chat.resend", project=conversation.project, owner_id=message.author_id)
    if message.role != Role.USER:
        raise ValidationError("Only prompts can be edited and resent.")
    prompt = _prompt_create(
        conversation=conversation, actor=actor, parent=message.parent, text=text,
        reply_settings=reply_settings,
    )
    return _reply_create(conversation=conversation, parent=prompt, actor=actor, reply_settings=reply_settings)


@transaction.atomic
def reply_regenerate(*, message: Message, actor: Membership, reply_settings: ReplySettings) -> Message:
    """A new queued reply beside ``message``, answering the same prompt."""
    membership_require(actor=actor, action="chat.send", project=message.conversation.project)
    if message.role != Role.ASSISTANT or message.parent is None:
        raise ValidationError("Only replies can be regenerated.")
    _settings_check(reply_settings)
    return _reply_create(
        conversation=message.conversation, parent=message.parent, actor=actor, reply_settings=reply_settings
    )


def reply_stop(*, message: Message, actor: Membership) -> None:
    """Ask the worker to stop ``message``; one still in the queue ends "stopped" at once.

    The worker keeps the text decoded so far and marks the reply "stopped".
    A finished reply is left as it is. ``chat.stop``: whoever asked for the
    reply, or an admin or owner (issue 23 #11).
    """
    membership_require(
        actor=actor, action="chat.stop", project=message.conversation.project, owner_id=message.author_id
    )
    jobs.job_stop(kind=REPLY, job=message)


@transaction.atomic
def conversation_start(
    *,
    project: Project,
    actor: Membership,
    text: str,
    reply_settings: ReplySettings,
    template_use: TemplateUseRequest | None = None,
) -> Message:
    """A new conversation whose first prompt is ``text``; returns the queued reply."""
    conversation = conversation_create(project=project, actor=actor, reply_settings=reply_settings)
    return message_send(
        conversation=conversation, actor=actor, text=text, parent=None, reply_settings=reply_settings,
        template_use=template_use,
    )


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


def _text_request(message: Message) -> TextRequest:
    from generation.text.types import ChatMessage, DecodingParams, TextRequest

    turns = tuple(
        ChatMessage(role=m.role, content=m.text)
        for m in reply_history(message=message)
        if m.role == Role.USER or m.text.strip()
    )
    if message.knowledge is not None and turns:  # the question goes in the team's context template
        template = context_template(project_id=message.conversation.project_id)
        question = context_render(template=template, passages=message.knowledge, question=turns[-1].content)
        turns = (*turns[:-1], ChatMessage(role=Role.USER, content=question))
    return TextRequest(
        messages=turns,
        model=message.model_name,
        system=message.system_prompt or None,
        params=DecodingParams.from_dict(message.params),
    )


def _reply_values(message: Message, outcome: TextOutcome) -> dict[str, Any]:
    values: dict[str, Any] = {"html": render_markdown(outcome.text)}
    final = outcome.final
    if final is not None:
        values.update(
            elapsed=final.elapsed, batch_max=final.batch_max, batch_mean=final.batch_mean, model_name=final.model,
            params=final.params.to_dict(),
        )
    return values


def _reply_finished(message: Message, outcome: TextOutcome) -> None:
    if outcome.status == JobStatus.DONE:
        _audit_generated(message)


REPLY_TEXT = TextJobKind(
    kind=REPLY, log=stream.REPLY_LOG, request=_text_request, what="The reply", values=_reply_values,
    finished=_reply_finished, load_first=True,
)


def reply_run(*, message_id: int, worker: str = "") -> Message | None:
    """Decode a queued reply, streaming chunks as they come, and store how it ended (``core.textjobs``).

    Returns ``None`` when the reply was not queued any more (redelivered,
    stopped in the queue) or was deleted or swept while decoding. Engine
    failures end as "failed" with the partial text and the reason.
    """
    message: Message | None = text_job_run(spec=REPLY_TEXT, job_id=message_id, worker=worker)
    return message


def _audit_generated(message: Message) -> None:
    project = message.conversation.project
    audit_record(
        actor=message.author, team_id=project.team_id, project_id=project.pk, action=AuditAction.GENERATED,
        object_kind="reply", object_id=message.pk, detail={"conversation": message.conversation_id},
    )


def reply_defer_unfair(*, message_id: int, deferred: int) -> bool:
    """True when the reply's task went to the back of the queue: its author runs more text jobs
    than someone whose job waits (see ``jobs.job_defer_unfair``)."""
    return jobs.job_defer_unfair(kind=REPLY, job_id=message_id, deferred=deferred)


def reply_fail(*, message_id: int, reason: str) -> bool:
    """Mark a reply that is still queued or running as failed, keeping the text streamed so far."""
    return jobs.job_fail(kind=REPLY, job_id=message_id, reason=reason)

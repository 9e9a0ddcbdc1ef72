"""Reads. Conversations and messages are reached only through the user's memberships."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404

from webapp.chat.markdown import render_markdown
from webapp.chat.models import Conversation, Message
from webapp.chat.params import ReplySettings
from webapp.core.http import AnyUser
from webapp.workspaces.models import Project
from webapp.workspaces.selectors import project_get_for_member

# A sidebar page of conversations, and the newest messages of a thread shown at once.
SIDEBAR_PAGE = 50
THREAD_PAGE = 50


def conversation_list(*, project: Project) -> QuerySet[Conversation]:
    """The project's conversations, the most recently active first."""
    return Conversation.objects.filter(project=project).order_by("-updated_at", "-id")


def conversation_page(*, project: Project, page: str | int | None = 1) -> Page:
    """One sidebar page (a Django ``Page``) of ``conversation_list``; a bad page number gives the last/first."""

    return Paginator(conversation_list(project=project).only("id", "title", "updated_at", "project_id"),
                     SIDEBAR_PAGE).get_page(page)


def conversation_get_for_member(
    *, user: AnyUser, conversation_id: int, project_id: int | None = None
) -> Conversation:
    """A conversation in a project the user belongs to, with ``conversation.project.membership`` set.

    404 for outsiders and anonymous users (also when ``project_id`` is not
    the conversation's project). What the role may do is the services' to check.
    """
    if user is None or not user.is_authenticated:
        raise Http404("No such conversation")
    try:
        conversation = Conversation.objects.get(pk=conversation_id, project__team__memberships__user_id=user.pk)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404("No such conversation") from None
    if project_id is not None and conversation.project_id != int(project_id):
        raise Http404("No such conversation")
    conversation.project = project_get_for_member(user=user, project_id=conversation.project_id)
    return conversation


def message_get_for_member(*, user: AnyUser, project_id: int, message_id: int) -> Message:
    """A message of a conversation in the user's project; 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        message = Message.objects.select_related("conversation").get(pk=message_id, conversation__project=project)
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such message") from None
    message.conversation.project = project
    return message


@dataclass
class ThreadItem:
    message: Message
    html: str
    position: int  # 1-based among its siblings
    count: int
    previous_leaf_id: int | None
    next_leaf_id: int | None


def _latest_leaf(message: Message, children: dict[int | None, list[Message]]) -> Message:
    while children.get(message.pk):
        message = children[message.pk][-1]
    return message


def conversation_thread(
    *, conversation: Conversation, leaf_id: int | None = None, upto_id: int | None = None, limit: int | None = None
) -> list[ThreadItem]:
    """The path from a root to ``leaf_id`` (or to the newest message), with sibling navigation.

    With ``upto_id`` the path ends exactly at that message (earlier pages);
    with ``limit`` only its last ``limit`` messages come back (the first one's
    ``parent_id`` is where the earlier page ends). Only the tree's ids are read
    for the whole conversation; texts only for the messages shown.
    Finished messages come with their stored (sanitized) HTML; live replies
    with empty HTML, because the page streams them.
    """
    # conversation_id too: the related manager sets each row's conversation from it (deferred, a query per row).
    messages = list(
        conversation.messages.order_by("created_at", "id").only("id", "conversation_id", "parent_id", "created_at")
    )
    if not messages:
        return []
    by_id = {m.pk: m for m in messages}
    children: dict[int | None, list[Message]] = {}
    for m in messages:
        children.setdefault(m.parent_id, []).append(m)
    leaf = by_id.get(upto_id) if upto_id is not None else None
    if leaf is None:
        leaf = by_id.get(leaf_id) if leaf_id is not None else None
        leaf = _latest_leaf(leaf or messages[-1], children)
    path: list[Message] = []
    node: Message | None = leaf
    while node is not None:
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    path.reverse()
    if limit is not None:
        path = path[-limit:]
    full = conversation.messages.in_bulk([m.pk for m in path])
    items = []
    for m in path:
        siblings = children[m.parent_id]
        index = siblings.index(m)
        previous = _latest_leaf(siblings[index - 1], children).pk if index > 0 else None
        following = _latest_leaf(siblings[index + 1], children).pk if index + 1 < len(siblings) else None
        message = full[m.pk]
        items.append(ThreadItem(message, message_html(message=message), index + 1, len(siblings), previous, following))
    return items


def message_html(*, message: Message) -> str:
    """The message's sanitized HTML: stored when it ended; rendered here only for older rows."""
    if message.is_live:
        return ""
    return message.html or render_markdown(message.text)


def message_display(*, message: Message) -> ThreadItem:
    """One message as the thread would show it (for refreshing it alone)."""
    siblings = list(Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
                    .order_by("created_at", "id"))
    children: dict[int | None, list[Message]] = {}
    for m in Message.objects.filter(conversation_id=message.conversation_id).order_by("created_at", "id"):
        children.setdefault(m.parent_id, []).append(m)
    index = [s.pk for s in siblings].index(message.pk)
    previous = _latest_leaf(siblings[index - 1], children).pk if index > 0 else None
    following = _latest_leaf(siblings[index + 1], children).pk if index + 1 < len(siblings) else None
    return ThreadItem(message, message_html(message=message), index + 1, len(siblings), previous, following)


def conversation_message_get(*, conversation: Conversation, message_id: int) -> Message:
    """A message of this conversation (already access-checked); 404 otherwise."""
    try:
        return conversation.messages.get(pk=message_id)
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such message") from None


def conversation_settings(*, conversation: Conversation) -> ReplySettings:
    """The conversation's defaults as ``ReplySettings`` (engine defaults fill the gaps)."""
    from webapp.chat.params import default_model_name, default_params

    return ReplySettings(
        model_name=conversation.model_name or default_model_name(),
        system_prompt=conversation.system_prompt,
        params={**default_params(), **conversation.params},
        use_knowledge=conversation.use_knowledge,
    )


def replies_describe(project_id: int, ids: Any) -> dict[int, Any]:
    """Replies as the template page lists what a version made (see prompt_templates.outputs)."""
    from webapp.prompt_templates.outputs import OutputView

    replies = Message.objects.filter(pk__in=list(ids), conversation__project_id=project_id).select_related("conversation")
    return {
        m.pk: OutputView(label=m.text.strip() or m.conversation.title, url=f"{m.conversation.get_absolute_url()}?leaf={m.pk}",
                         status=m.get_status_display())
        for m in replies
    }

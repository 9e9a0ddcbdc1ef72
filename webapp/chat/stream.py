"""The live side of a reply: chat's shape of the shared text stream (``webapp.core.stream``).

Every chunk a worker emits is logged in the reply's Redis Stream and published
to the conversation's group as ``{"type": "chunk", "message", "seq", "text"}``,
and the end as ``{"type": "end", "message", "seq", "status"}``. A client that
connects late or reconnects reads the log after the last sequence number it
holds, then continues with live events, dropping any it already has.

Stopping a reply, its heartbeat and the sweep belong to the job lifecycle
(``webapp.core.jobs``); ``reply_state_publish`` and ``reply_end_values`` are
what a reply adds to it.
"""
from __future__ import annotations

from typing import Any

from webapp.core.jobs import END_STATUSES, JobStatus
from webapp.core.stream import TextLog, TextStream

REPLY_LOG = TextLog(
    kind="chat.reply",
    tag=lambda message: {"message": message.pk},
    group=lambda message: message.conversation.group_name,
    group_event="chat.event",
)


def log_key(message: Any) -> str:
    return REPLY_LOG.key(message)


def log_read(*, message: Any, after: int = 0) -> list[dict[str, Any]]:
    """The logged events of a reply with a sequence number above ``after``, in order."""
    return REPLY_LOG.read(message, after=after)


def log_text(*, message: Any) -> str:
    """The text streamed so far, joined from the log ("" once the log has expired)."""
    return REPLY_LOG.text(message)


class ReplyStream(TextStream):
    """A reply's ``TextStream``, publishing to ``group`` (the conversation's)."""

    def __init__(self, *, message: Any, group: str, **options: Any) -> None:
        super().__init__(log=REPLY_LOG, job=message, group=group, **options)


def reply_state_publish(message: Any) -> None:
    """The job lifecycle's ``publish`` for replies: an end that no worker streamed
    (stopped in the queue, failed by the sweep or a lost worker) is logged and published.

    A worker's own end goes out through its ``ReplyStream``.
    """
    if message.status in END_STATUSES:
        REPLY_LOG.end(message, status=message.status)


def reply_end_values(message: Any, status: str) -> dict[str, Any]:
    """The job lifecycle's ``end_values`` for replies: a failed reply keeps the text streamed so far."""
    from webapp.chat.markdown import render_markdown

    if status == JobStatus.STOPPED:
        return {"finish_reason": "cancelled", "html": render_markdown(message.text)}
    logged = log_text(message=message)
    text = logged if len(logged) > len(message.text) else message.text
    return {"text": text, "html": render_markdown(text), "finish_reason": "error"}

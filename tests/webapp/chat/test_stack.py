"""The real stack: embedded Redis, a real Celery worker decoding with the real default
model, sends and stops over HTTP as the page posts them, and the conversation socket
through the ASGI application."""
from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from tests.helpers import chat_send, chat_socket_path, chat_stop, session_client, socket_for
from webapp.chat.models import Message
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

PROMPT = "List ten fruits, one per line."


def _socket(conversation, user):
    return socket_for(chat_socket_path(conversation), session_client(user))


async def _events_until_end(socket, message_id: int, *, first_timeout: float = 120) -> list[dict]:
    events, timeout = [], first_timeout
    while True:
        event = await socket.receive_json_from(timeout=timeout)
        if event.get("message") != message_id or event["type"] not in ("chunk", "end"):
            continue  # the "created" note to everyone watching comes first
        timeout = 30
        events.append(event)
        if event["type"] == "end":
            return events


async def _send(conversation, user, **params) -> int:
    client = await sync_to_async(session_client)(user)
    return await sync_to_async(chat_send)(client, conversation, PROMPT, strategy="greedy", **params)


def _chunks_text(events: list[dict]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "chunk")


async def test_streamed_chunks_arrive_in_order_and_join_to_the_stored_text(celery_worker, conversation, bob):
    socket = await sync_to_async(_socket)(conversation, bob)
    assert (await socket.connect())[0]
    message_id = await _send(conversation, bob, max_new_tokens=24)
    events = await _events_until_end(socket, message_id)
    await socket.disconnect()

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gaps, no duplicates
    reply = await sync_to_async(Message.objects.get)(pk=message_id)
    assert reply.status == JobStatus.DONE and events[-1]["status"] == "done"
    assert reply.text and _chunks_text(events) == reply.text
    assert reply.completion_tokens and reply.tokens_per_second > 0 and reply.model_name == "smollm2-135m-instruct"


async def test_reconnecting_with_the_last_seq_gives_the_identical_final_text(celery_worker, conversation, bob):
    first = await sync_to_async(_socket)(conversation, bob)
    await first.connect()
    message_id = await _send(conversation, bob, max_new_tokens=40)
    seen = []
    while len(seen) < 3:
        event = await first.receive_json_from(timeout=120)
        if event.get("message") == message_id and event["type"] == "chunk":
            seen.append(event)
    await first.disconnect()
    await asyncio.sleep(0.3)  # chunks keep coming while nobody listens

    second = await sync_to_async(_socket)(conversation, bob)
    await second.connect()
    await second.send_json_to({"type": "resume", "message": message_id, "after": seen[-1]["seq"]})
    rest = await _events_until_end(second, message_id, first_timeout=30)
    await second.disconnect()

    events = seen + rest
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    reply = await sync_to_async(Message.objects.get)(pk=message_id)
    assert _chunks_text(events) == reply.text and reply.status == JobStatus.DONE


async def test_stop_ends_the_reply_stopped_with_its_partial_text_within_a_second(celery_worker, conversation, bob):
    socket = await sync_to_async(_socket)(conversation, bob)
    await socket.connect()
    message_id = await _send(conversation, bob, max_new_tokens=400)
    seen = []
    while len(seen) < 2:
        event = await socket.receive_json_from(timeout=120)
        if event.get("message") == message_id and event["type"] == "chunk":
            seen.append(event)
    client = await sync_to_async(session_client)(bob)
    asked = time.monotonic()
    await sync_to_async(chat_stop)(client, message_id, conversation.project_id)
    while True:
        reply = await sync_to_async(Message.objects.get)(pk=message_id)
        if reply.status != JobStatus.RUNNING or time.monotonic() - asked > 5:
            break
        await asyncio.sleep(0.02)
    took = time.monotonic() - asked
    events = seen + await _events_until_end(socket, message_id, first_timeout=10)
    await socket.disconnect()

    assert reply.status == JobStatus.STOPPED and reply.finish_reason == "cancelled"
    assert took < 1.0, f"stopping took {took:.2f}s"
    assert reply.text and _chunks_text(events) == reply.text
    assert reply.completion_tokens < 400

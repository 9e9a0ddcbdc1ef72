"""The conversation socket through the whole ASGI stack (origin check, auth, routing)."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.factories import membership_of
from tests.helpers import chat_send, chat_socket_path, session_client, short_settings, socket_for
from webapp.chat import services, stream
from webapp.chat.models import Message
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_server", "no_enqueue")]


@pytest.fixture
def reply(conversation, bob):
    return services.message_send(conversation=conversation, actor=membership_of(bob), text="hello", parent=None,
                                 reply_settings=short_settings())


def _socket(conversation, user=None, origin="http://localhost:8000"):
    return socket_for(chat_socket_path(conversation), session_client(user) if user else None, origin=origin)


async def test_anonymous_user_is_refused(conversation):
    connected, _ = await _socket(conversation).connect()
    assert not connected


async def test_a_foreign_origin_is_refused(conversation, bob):
    socket = await sync_to_async(_socket)(conversation, bob, origin="https://evil.example")
    connected, _ = await socket.connect()
    assert not connected


async def test_an_outsider_cannot_join_another_projects_conversation(conversation, mallory):
    socket = await sync_to_async(_socket)(conversation, mallory)
    connected, code = await socket.connect()
    assert not connected and code == 4404


async def test_a_conversation_under_another_projects_id_is_not_found(conversation, other_project, mallory, bob):
    """The URL's project must be the conversation's: mallory's own project id does not open Acme's conversation,
    and bob cannot reach his conversation through a project id that is not its own."""
    for user, project_id in ((mallory, other_project.pk), (bob, other_project.pk)):
        client = await sync_to_async(session_client)(user)
        socket = socket_for(f"/ws/projects/{project_id}/chat/{conversation.pk}/", client)
        connected, code = await socket.connect()
        assert not connected and code == 4404


async def test_a_member_joins_and_gets_live_events_for_the_conversation(conversation, reply, bob):
    socket = await sync_to_async(_socket)(conversation, bob)
    connected, _ = await socket.connect()
    assert connected
    out = await sync_to_async(stream.ReplyStream)(message=reply, group=conversation.group_name, interval=0)
    await sync_to_async(out.write)("Hi")
    assert await socket.receive_json_from(timeout=5) == {"type": "chunk", "message": reply.pk, "seq": 1, "text": "Hi"}
    await socket.disconnect()


async def test_resume_replays_the_log_after_the_given_seq_then_continues_live(conversation, reply, bob):
    out = await sync_to_async(stream.ReplyStream)(message=reply, group=conversation.group_name, interval=0)
    for text in ["a", "b", "c"]:
        await sync_to_async(out.write)(text)
    await sync_to_async(out.close)()  # all three are in the log
    socket = await sync_to_async(_socket)(conversation, bob)
    await socket.connect()
    await socket.send_json_to({"type": "resume", "message": reply.pk, "after": 1})
    assert [(await socket.receive_json_from(timeout=5))["text"] for _ in range(2)] == ["b", "c"]
    await sync_to_async(out.write)("d")
    assert (await socket.receive_json_from(timeout=5))["seq"] == 4
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


async def test_resume_of_a_message_from_another_conversation_reveals_nothing(conversation, project, reply, alice, bob):
    other = await sync_to_async(services.conversation_create)(project=project, actor=await sync_to_async(membership_of)(alice), reply_settings=short_settings())
    out = await sync_to_async(stream.ReplyStream)(message=reply, group=conversation.group_name, interval=0)
    await sync_to_async(out.write)("private")
    socket = await sync_to_async(_socket)(other, bob)
    await socket.connect()
    await socket.send_json_to({"type": "resume", "message": reply.pk, "after": 0})
    assert (await socket.receive_json_from(timeout=5)) == {"type": "error", "error": "no such message"}
    await socket.disconnect()


@pytest.mark.parametrize("write", [{"type": "send", "text": "let me in"}, {"type": "stop", "message": 0}])
async def test_the_socket_takes_no_writes_they_go_over_http(write, conversation, reply, bob, no_enqueue):
    socket = await sync_to_async(_socket)(conversation, bob)
    assert (await socket.connect())[0]
    await socket.send_json_to({**write, "message": reply.pk} if write["type"] == "stop" else write)
    assert await socket.receive_json_from(timeout=5) == {"type": "error", "error": "unknown request (writes go over HTTP)"}
    assert await sync_to_async(Message.objects.count)() == 2 and no_enqueue.ids() == [reply.pk]
    assert (await sync_to_async(Message.objects.get)(pk=reply.pk)).status == JobStatus.QUEUED
    await socket.disconnect()


async def test_a_send_over_http_reaches_everyone_watching_the_socket(conversation, reply, bob, no_enqueue):
    await sync_to_async(Message.objects.filter(pk=reply.pk).update)(status=JobStatus.DONE, text="hi")
    socket = await sync_to_async(_socket)(conversation, bob)
    await socket.connect()
    client = await sync_to_async(session_client)(bob)
    new_id = await sync_to_async(chat_send)(client, conversation, "next one", parent=reply.pk, max_new_tokens=4)
    new_reply = await sync_to_async(Message.objects.get)(pk=new_id)
    assert new_reply.params["max_new_tokens"] == 4 and no_enqueue.ids() == [reply.pk, new_id]
    assert await socket.receive_json_from(timeout=5) == {"type": "created", "message": new_id,
                                                         "prompt": new_reply.parent_id}
    await socket.disconnect()


async def test_one_resume_checks_membership_once(conversation, reply, bob, monkeypatch):
    from webapp.chat import selectors

    calls = []
    real = selectors.conversation_get_for_member
    monkeypatch.setattr(selectors, "conversation_get_for_member", lambda **kw: calls.append(kw) or real(**kw))
    socket = await sync_to_async(_socket)(conversation, bob)
    assert (await socket.connect())[0] and len(calls) == 1  # the check at connect
    await socket.send_json_to({"type": "resume", "message": reply.pk, "after": 0})
    assert await socket.receive_nothing(timeout=0.5)  # nothing in the log yet
    assert len(calls) == 2
    await socket.disconnect()


async def test_an_idle_socket_outlives_the_channel_layers_blocking_read(conversation, reply, bob):
    # channels_redis blocks 5 s per read; redis-py 8 also times sockets out at 5 s by
    # default, which killed idle consumers until the layer's socket timeout was raised.
    import asyncio

    socket = await sync_to_async(_socket)(conversation, bob)
    await socket.connect()
    await asyncio.sleep(6.5)
    out = await sync_to_async(stream.ReplyStream)(message=reply, group=conversation.group_name, interval=0)
    await sync_to_async(out.write)("still here")
    assert (await socket.receive_json_from(timeout=5))["text"] == "still here"
    await socket.disconnect()


async def test_everyone_watching_hears_when_a_reply_is_queued(conversation, alice, bob):
    watcher = await sync_to_async(_socket)(conversation, alice)
    await watcher.connect()
    reply = await sync_to_async(services.message_send)(conversation=conversation, actor=await sync_to_async(membership_of)(bob), text="hi", parent=None,
                                                       reply_settings=short_settings())
    assert await watcher.receive_json_from(timeout=5) == {"type": "created", "message": reply.pk, "prompt": reply.parent_id}
    await watcher.disconnect()

"""Access follows membership at every moment: open sockets close as soon as membership,
session or password change, and writes (over HTTP) follow the role of the moment."""
from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from tests.helpers import (
    chat_send,
    chat_socket_path,
    membership,
    reviews_socket_path,
    session_client,
    short_settings,
    socket_for,
    studio_socket_path,
)
from webapp.chat import services as chat_services
from webapp.chat.models import Message
from webapp.workspaces import services as workspace_services
from webapp.workspaces.models import Membership, Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_server", "no_enqueue")]

CLOSE_REVOKED = 4403


async def _open(path: str, client) -> object:
    socket = socket_for(path, client)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    return socket


async def _closed_within(socket, seconds: float) -> int:
    """Wait for the server to close ``socket``; returns the close code."""
    started = time.monotonic()
    while True:
        output = await socket.receive_output(timeout=seconds)
        if output["type"] == "websocket.close":
            assert time.monotonic() - started < seconds
            return output.get("code")


def _remove(team, alice, bob) -> None:
    actor = Membership.objects.get(team=team, user=alice)
    workspace_services.membership_remove(actor=actor, membership=Membership.objects.get(team=team, user=bob))


def _demote(team, alice, bob) -> None:
    actor = Membership.objects.get(team=team, user=alice)
    target = Membership.objects.get(team=team, user=bob)
    workspace_services.membership_change_role(actor=actor, membership=target, role=Role.VIEWER)


@pytest.mark.parametrize("which", ["chat", "studio", "reviews"])
async def test_a_removed_members_open_socket_closes_within_a_second(which, conversation, project, team, alice, bob):
    client = await sync_to_async(session_client)(bob)
    paths = {"chat": chat_socket_path(conversation), "studio": studio_socket_path(project),
             "reviews": reviews_socket_path(project)}
    socket = await _open(paths[which], client)
    await sync_to_async(_remove)(team, alice, bob)
    assert await _closed_within(socket, 1.0) == CLOSE_REVOKED


async def test_a_demoted_member_with_the_page_still_open_can_no_longer_send(conversation, team, alice, bob):
    client = await sync_to_async(session_client)(bob)
    socket = await _open(chat_socket_path(conversation), client)
    await sync_to_async(_demote)(team, alice, bob)
    with pytest.raises(AssertionError, match="refused"):
        await sync_to_async(chat_send)(client, conversation, "still here?")
    assert not await sync_to_async(Message.objects.filter(text="still here?").exists)()
    assert await socket.receive_nothing(timeout=0.3)  # a viewer still reads
    await socket.disconnect()


async def test_a_removed_members_socket_refuses_actions_even_without_the_event(conversation, team, bob):
    """The revoked event is the fast path; every action re-checks the database too."""
    client = await sync_to_async(session_client)(bob)
    socket = await _open(chat_socket_path(conversation), client)
    await sync_to_async(Membership.objects.filter(team=team, user=bob).delete)()  # no service, no event
    await socket.send_json_to({"type": "resume", "message": 1, "after": 0})
    assert await _closed_within(socket, 2.0) == CLOSE_REVOKED


async def test_a_removed_member_gets_no_further_events_even_without_the_revoked_event(conversation, team, alice, bob):
    client = await sync_to_async(session_client)(bob)
    socket = await _open(chat_socket_path(conversation), client)
    await sync_to_async(Membership.objects.filter(team=team, user=bob).delete)()
    await asyncio.sleep(1.1)  # past the consumer's re-check interval
    await sync_to_async(chat_services.message_send)(
        conversation=conversation, actor=await sync_to_async(membership)(alice, conversation), text="secret plan", parent=None, reply_settings=short_settings()
    )
    output = await socket.receive_output(timeout=3)
    assert output["type"] == "websocket.close"


async def test_logging_out_closes_the_sessions_sockets(conversation, bob):
    client = await sync_to_async(session_client)(bob)
    socket = await _open(chat_socket_path(conversation), client)
    await sync_to_async(client.post)("/accounts/logout/")
    assert await _closed_within(socket, 1.0) == CLOSE_REVOKED


async def test_changing_the_password_closes_the_other_sessions_sockets(conversation, bob):
    other = await sync_to_async(session_client)(bob)
    here = await sync_to_async(session_client)(bob)
    socket = await _open(chat_socket_path(conversation), other)
    kept = await _open(chat_socket_path(conversation), here)

    def change() -> None:
        bob.refresh_from_db()
        bob.set_password("a new and long passphrase 42")
        bob.save()

    await sync_to_async(change)()
    assert await _closed_within(socket, 1.0) == CLOSE_REVOKED
    await socket.disconnect()
    await kept.disconnect()

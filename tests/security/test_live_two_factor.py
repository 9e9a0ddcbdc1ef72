"""Issue 20, point 3, on websockets: a team that requires two-factor refuses live events to a member
without it, at connect and while connected (access follows the requirement at every moment)."""
from __future__ import annotations

import time

import pytest
from allauth.mfa.base.internal.flows import delete_and_cleanup
from allauth.mfa.models import Authenticator
from asgiref.sync import sync_to_async
from django.test import RequestFactory

from tests.helpers import (
    chat_socket_path,
    reviews_socket_path,
    session_client,
    socket_for,
    studio_socket_path,
)
from webapp.workspaces import services as workspace_services
from webapp.workspaces.models import Membership

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_server", "no_enqueue")]

CLOSE_REVOKED = 4403
CLOSE_NOT_FOUND = 4404
WHICH = ["chat", "studio", "reviews"]


def _path(which: str, conversation, project) -> str:
    return {"chat": chat_socket_path(conversation), "studio": studio_socket_path(project),
            "reviews": reviews_socket_path(project)}[which]


def _two_factor(user) -> Authenticator:
    return Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})


def _require(team, alice) -> None:
    _two_factor(alice)
    workspace_services.team_two_factor_set(actor=Membership.objects.get(team=team, user=alice), required=True)


async def _closed_within(socket, seconds: float) -> int:
    started = time.monotonic()
    while True:
        output = await socket.receive_output(timeout=seconds)
        if output["type"] == "websocket.close":
            assert time.monotonic() - started < seconds
            return output.get("code")


@pytest.mark.parametrize("which", WHICH)
async def test_a_member_without_two_factor_cannot_open_a_socket_of_a_team_that_requires_it(
        which, conversation, project, team, alice, bob):
    await sync_to_async(_require)(team, alice)
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(_path(which, conversation, project), client)
    connected, code = await socket.connect(timeout=5)
    assert not connected and code == CLOSE_NOT_FOUND


@pytest.mark.parametrize("which", WHICH)
async def test_a_member_with_two_factor_opens_it(which, conversation, project, team, alice, bob):
    await sync_to_async(_require)(team, alice)
    await sync_to_async(_two_factor)(bob)
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(_path(which, conversation, project), client)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await socket.disconnect()


@pytest.mark.parametrize("which", WHICH)
async def test_requiring_two_factor_closes_the_open_sockets_of_members_without_it(
        which, conversation, project, team, alice, bob):
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(_path(which, conversation, project), client)
    assert (await socket.connect(timeout=5))[0]
    await sync_to_async(_require)(team, alice)
    assert await _closed_within(socket, 1.0) == CLOSE_REVOKED


async def test_requiring_two_factor_leaves_a_member_with_it_connected(conversation, project, team, alice, bob):
    await sync_to_async(_two_factor)(bob)
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(studio_socket_path(project), client)
    assert (await socket.connect(timeout=5))[0]
    await sync_to_async(_require)(team, alice)
    assert await socket.receive_nothing(timeout=1.0)
    await socket.disconnect()


async def test_removing_ones_two_factor_closes_the_sockets_of_a_team_that_requires_it(project, team, alice, bob):
    await sync_to_async(_require)(team, alice)
    authenticator = await sync_to_async(_two_factor)(bob)
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(studio_socket_path(project), client)
    assert (await socket.connect(timeout=5))[0]

    def remove() -> None:
        request = RequestFactory().post("/accounts/2fa/totp/deactivate/")
        request.user = bob
        delete_and_cleanup(request, authenticator)  # what allauth's deactivate page runs

    await sync_to_async(remove)()
    assert await _closed_within(socket, 1.0) == CLOSE_REVOKED


async def test_a_team_without_the_requirement_is_unaffected(conversation, project, team, bob):
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(chat_socket_path(conversation), client)
    assert (await socket.connect(timeout=5))[0]
    await socket.disconnect()

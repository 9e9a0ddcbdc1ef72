from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from tests.helpers import session_client, socket_for, studio_socket_path
from webapp.studio.events import studio_group_name

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


async def _connect(project, user=None, origin: str = "") -> tuple[WebsocketCommunicator, bool]:
    client = await database_sync_to_async(session_client)(user) if user is not None else None
    communicator = socket_for(studio_socket_path(project), client, origin=origin)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def test_studio_socket_refuses_an_anonymous_visitor(project, redis_server):
    communicator, connected = await _connect(project)
    assert not connected
    await communicator.disconnect()


async def test_studio_socket_refuses_a_foreign_origin(project, bob, redis_server):
    communicator, connected = await _connect(project, bob, origin="https://evil.example")
    assert not connected
    await communicator.disconnect()


async def test_studio_socket_refuses_an_outsider(project, mallory, redis_server):
    communicator, connected = await _connect(project, mallory)
    assert not connected
    await communicator.disconnect()


async def test_studio_socket_forwards_the_members_own_progress_as_html(project, bob, redis_server):
    communicator, connected = await _connect(project, bob)
    assert connected
    group = studio_group_name(project_id=project.pk, user_id=bob.pk)
    await get_channel_layer().group_send(
        group, {"type": "studio.progress", "job_id": 42, "step": 3, "total": 20, "eta": 1.5,
                "preview": "data:image/png;base64,AAAA"}
    )
    html = await communicator.receive_from(timeout=5)
    assert 'id="job-42-progress"' in html and "Step 3 of 20" in html
    assert 'id="job-42-preview"' in html and 'src="data:image/png;base64,AAAA"' in html
    await communicator.disconnect()


async def test_studio_socket_does_not_hear_a_teammates_jobs(project, alice, bob, redis_server):
    communicator, connected = await _connect(project, bob)
    assert connected
    await get_channel_layer().group_send(
        studio_group_name(project_id=project.pk, user_id=alice.pk),
        {"type": "studio.progress", "job_id": 1, "step": 1, "total": 2, "eta": 0},
    )
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
    await asyncio.sleep(0)


async def test_studio_socket_still_delivers_after_an_idle_spell(project, bob, redis_server):
    # The channel layer blocks 5 s per read; a client socket timeout of 5 s used to kill idle consumers.
    communicator, connected = await _connect(project, bob)
    assert connected
    await asyncio.sleep(6)
    await get_channel_layer().group_send(
        studio_group_name(project_id=project.pk, user_id=bob.pk),
        {"type": "studio.progress", "job_id": 5, "step": 1, "total": 2, "eta": 0},
    )
    assert "Step 1 of 2" in await communicator.receive_from(timeout=5)
    await communicator.disconnect()

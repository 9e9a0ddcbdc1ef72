"""The project's live activity socket: members hear each finished job as an HTML fragment; others are refused."""
from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests.helpers import finished_image_job, session_client, socket_for

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def _path(project) -> str:
    return f"/ws/projects/{project.pk}/activity/"


async def test_the_activity_socket_refuses_an_outsider(project, mallory, redis_server):
    socket = socket_for(_path(project), await database_sync_to_async(session_client)(mallory))
    connected, _ = await socket.connect(timeout=5)
    assert not connected
    await socket.disconnect()


async def test_a_viewer_hears_a_finished_job_as_a_fragment_for_the_top_of_the_feed(project, bob, carol,
                                                                                   redis_server, no_enqueue):
    socket = socket_for(_path(project), await database_sync_to_async(session_client)(carol))
    connected, _ = await socket.connect(timeout=5)
    assert connected
    job = await database_sync_to_async(finished_image_job)(project=project, user=bob, colours=("red", "blue"))
    html = await socket.receive_from(timeout=10)
    assert 'id="activity-live" hx-swap-oob="afterbegin"' in html
    assert f'data-record="studio.image:{job.pk}"' in html and "2 images" in html and "bob" in html
    await socket.disconnect()

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


async def test_a_viewer_hears_a_review_asked_for_and_a_template_published_as_they_commit(project, alice, carol,
                                                                                        redis_server):
    from tests.helpers import membership
    from webapp.audit.models import AuditAction
    from webapp.audit.services import audit_record
    from webapp.prompt_templates import services as templates

    socket = socket_for(_path(project), await database_sync_to_async(session_client)(carol))
    connected, _ = await socket.connect(timeout=5)
    assert connected

    def publish():
        return templates.template_create(actor=membership(alice, project), project=project, name="Launch tweet",
                                         command="tweet", kind="chat", body="Write a tweet about {topic}")

    await database_sync_to_async(publish)()
    html = await socket.receive_from(timeout=10)
    assert 'id="activity-live" hx-swap-oob="afterbegin"' in html
    assert 'data-entry="template_published:' in html and "Launch tweet (/tweet) version 1" in html and "alice" in html
    # An entry the feed does not show (a download) sends nothing; the next one it shows arrives.
    await database_sync_to_async(audit_record)(actor=alice, team_id=project.team_id, project_id=project.pk,
                                               action=AuditAction.DOWNLOADED, object_kind="export", object_id=1)
    await database_sync_to_async(audit_record)(actor=alice, team_id=project.team_id, project_id=project.pk,
                                               action=AuditAction.REVIEW_REQUESTED, object_kind="review", object_id=7)
    html = await socket.receive_from(timeout=10)
    assert 'data-entry="review_requested:' in html and "review #7" in html
    await socket.disconnect()

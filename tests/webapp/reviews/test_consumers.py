"""The project's review socket (``/ws/projects/<id>/reviews/``): the inbox and the badge, live."""
from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from tests.helpers import membership, reviews_socket_path, session_client, socket_for
from webapp.core.access import RECHECK_SECONDS
from webapp.reviews import services
from webapp.reviews.events import inbox_group_name
from webapp.reviews.models import AssetKind

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


async def _connect(project, user=None) -> tuple[WebsocketCommunicator, bool]:
    client = await database_sync_to_async(session_client)(user) if user is not None else None
    communicator = socket_for(reviews_socket_path(project), client)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


def _ask(project, image, bob, reviewers):
    return services.review_request_create(actor=membership(bob, project), project=project, kind=AssetKind.IMAGE,
                                          asset_ids=[image.pk], reviewer_ids=[u.pk for u in reviewers])[0]


async def test_the_review_socket_refuses_an_anonymous_visitor(project, redis_server):
    communicator, connected = await _connect(project)
    assert not connected
    await communicator.disconnect()


async def test_the_review_socket_refuses_an_outsider(project, mallory, redis_server):
    communicator = socket_for(reviews_socket_path(project), await database_sync_to_async(session_client)(mallory))
    connected, code = await communicator.connect(timeout=5)
    assert not connected and code == 4404


async def test_the_review_socket_sends_the_badge_and_lists_when_a_review_changes(project, image, alice, bob,
                                                                                 redis_server):
    communicator, connected = await _connect(project, alice)
    assert connected
    review = await database_sync_to_async(_ask)(project, image, bob, [alice])
    # The service publishes after commit; the event reaches alice's group of this project.
    html = await communicator.receive_from(timeout=10)
    assert 'id="review-badge"' in html and 'hx-swap-oob="true"' in html and ">1</span>" in html
    assert review.get_absolute_url() in html
    await communicator.disconnect()


async def test_another_projects_socket_hears_nothing_of_the_review(project, image, alice, bob, team, redis_server):
    from tests.factories import ProjectFactory

    elsewhere = await database_sync_to_async(ProjectFactory)(team=team, name="Elsewhere", created_by=alice)
    communicator, connected = await _connect(elsewhere, alice)
    assert connected
    await database_sync_to_async(_ask)(project, image, bob, [alice])
    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()


async def test_an_outsider_socket_hears_nothing_of_a_review(project, image, alice, bob, mallory, other_project,
                                                            redis_server):
    communicator, connected = await _connect(other_project, mallory)
    assert connected
    await database_sync_to_async(_ask)(project, image, bob, [alice])
    assert await communicator.receive_nothing(timeout=1)
    # Even an event sent to mallory's own group about Acme's review shows her nothing of it.
    group = inbox_group_name(project_id=other_project.pk, user_id=mallory.pk)
    await get_channel_layer().group_send(group, {"type": "reviews.changed", "review_id": 1})
    html = await communicator.receive_from(timeout=5)
    assert "/reviews/1/" not in html and "Nothing waits for you" in html
    await communicator.disconnect()


async def test_a_member_who_left_has_the_socket_closed_on_the_next_event(project, image, alice, bob, dave,
                                                                         redis_server):
    from webapp.core.access import CLOSE_REVOKED

    communicator, connected = await _connect(project, dave)
    assert connected
    review = await database_sync_to_async(
        lambda: services.review_request_create(actor=membership(bob, project), project=project,
                                               kind=AssetKind.IMAGE, asset_ids=[image.pk], reviewer_ids=[],
                                               anyone=True)[0]
    )()
    assert review.get_absolute_url() in await communicator.receive_from(timeout=10)
    await database_sync_to_async(lambda: membership(dave, project).delete())()  # no service, no revoked event
    await asyncio.sleep(RECHECK_SECONDS + 0.1)  # events reuse a check younger than this
    await get_channel_layer().group_send(inbox_group_name(project_id=project.pk, user_id=dave.pk),
                                         {"type": "reviews.changed", "review_id": review.pk})
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_REVOKED}


async def test_logging_out_closes_the_review_socket(project, redis_server, bob):
    from webapp.core.access import CLOSE_REVOKED, access_revoke

    client = await database_sync_to_async(session_client)(bob)
    communicator = socket_for(reviews_socket_path(project), client)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await database_sync_to_async(client.logout)()
    await database_sync_to_async(access_revoke)(user_id=bob.pk, reason="logout")
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_REVOKED}

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.webapp.reviews.helpers import membership
from webapp.asgi import application
from webapp.reviews import services
from webapp.reviews.events import inbox_group_name
from webapp.reviews.models import AssetKind

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://localhost:8000")


def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def _connect(user=None) -> tuple[WebsocketCommunicator, bool]:
    headers = [ORIGIN, (b"host", b"localhost")]
    if user is not None:
        headers.append(await database_sync_to_async(_session_cookie)(user))
    communicator = WebsocketCommunicator(application, "/ws/reviews/inbox/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


def _ask(project, image, bob, reviewers):
    return services.review_request_create(actor=membership(bob, project), project=project, kind=AssetKind.IMAGE,
                                          asset_ids=[image.pk], reviewer_ids=[u.pk for u in reviewers])[0]


async def test_the_inbox_socket_refuses_an_anonymous_visitor(redis_server):
    communicator, connected = await _connect()
    assert not connected
    await communicator.disconnect()


async def test_the_inbox_socket_sends_the_badge_and_lists_when_a_review_changes(project, image, alice, bob,
                                                                                redis_server):
    communicator, connected = await _connect(alice)
    assert connected
    review = await database_sync_to_async(_ask)(project, image, bob, [alice])
    # The service publishes after commit; the event reaches alice's own group.
    html = await communicator.receive_from(timeout=10)
    assert 'id="review-badge"' in html and 'hx-swap-oob="true"' in html and ">1</span>" in html
    assert review.get_absolute_url() in html
    await communicator.disconnect()


async def test_an_outsider_socket_hears_nothing_of_a_review(project, image, alice, bob, mallory, other_project,
                                                            redis_server):
    communicator, connected = await _connect(mallory)
    assert connected
    await database_sync_to_async(_ask)(project, image, bob, [alice])
    assert await communicator.receive_nothing(timeout=1)
    # Even an event sent to mallory's own group about Acme's review shows her nothing of it.
    await get_channel_layer().group_send(inbox_group_name(user_id=mallory.pk), {"type": "reviews.changed", "review_id": 1})
    html = await communicator.receive_from(timeout=5)
    assert "/reviews/1/" not in html and "Nothing waits for you" in html
    await communicator.disconnect()


async def test_a_member_who_left_stops_seeing_the_review_on_the_next_event(project, image, alice, bob, dave,
                                                                          redis_server):
    communicator, connected = await _connect(dave)
    assert connected
    review = await database_sync_to_async(
        lambda: services.review_request_create(actor=membership(bob, project), project=project,
                                               kind=AssetKind.IMAGE, asset_ids=[image.pk], reviewer_ids=[],
                                               anyone=True)[0]
    )()
    assert review.get_absolute_url() in await communicator.receive_from(timeout=10)
    await database_sync_to_async(lambda: membership(dave, project).delete())()
    await get_channel_layer().group_send(inbox_group_name(user_id=dave.pk),
                                         {"type": "reviews.changed", "review_id": review.pk})
    html = await communicator.receive_from(timeout=5)
    assert review.get_absolute_url() not in html and ">0</span>" in html
    await communicator.disconnect()


async def test_logging_out_closes_the_inbox_socket(redis_server, bob):
    from webapp.core.access import CLOSE_REVOKED, access_revoke

    client = Client()
    await database_sync_to_async(client.force_login)(bob)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    communicator = WebsocketCommunicator(application, "/ws/reviews/inbox/", headers=[ORIGIN, (b"host", b"localhost"), cookie])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await database_sync_to_async(client.logout)()
    await database_sync_to_async(access_revoke)(user_id=bob.pk, reason="logout")
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": CLOSE_REVOKED}

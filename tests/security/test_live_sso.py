"""Issue 20, point 4, on websockets: a membership that single sign-on's group map granted ends, when the
group is gone at the next sign-on, as a manual removal does: the member's open sockets close at once."""
from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from tests.factories import ProjectFactory, TeamFactory, UserFactory
from tests.helpers import socket_for, studio_socket_path
from tests.oidc_provider import OidcProvider, sso_login
from webapp.accounts.oidc_config import oidc_providers_setting
from webapp.workspaces.models import Membership

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_server", "no_enqueue")]

CLOSE_REVOKED = 4403


@pytest.fixture
def idp(settings, monkeypatch):
    provider = OidcProvider().start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    provider.user = {"sub": "u-9", "email": "erin@example.com", "email_verified": True,
                     "preferred_username": "erin", "groups": ["designers"]}
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {
        **settings.SOCIALACCOUNT_PROVIDERS["openid_connect"],
        "APPS": oidc_providers_setting(json.dumps([provider.app_setting()])),
    }}
    settings.ATELIER_OIDC_ROLE_MAP = {"designers": ("Acme", "member")}
    yield provider
    provider.stop()


async def test_a_group_gone_at_the_provider_closes_the_members_open_socket_at_their_next_sign_on(idp):
    def world():
        UserFactory(username="admin0")
        return ProjectFactory(team=TeamFactory(name="Acme"), name="Launch")

    project = await sync_to_async(world)()
    browser = Client()
    await sync_to_async(sso_login)(browser, idp)
    assert await sync_to_async(Membership.objects.filter(user__username="erin", granted_by_sso=True).exists)()
    socket = socket_for(studio_socket_path(project), browser)
    assert (await socket.connect(timeout=5))[0]

    idp.user = {**idp.user, "groups": []}
    await sync_to_async(sso_login)(Client(), idp)  # the next sign-on, from another device
    started = time.monotonic()
    while True:
        output = await socket.receive_output(timeout=1.0)
        if output["type"] == "websocket.close":
            break
    assert output.get("code") == CLOSE_REVOKED and time.monotonic() - started < 1.0

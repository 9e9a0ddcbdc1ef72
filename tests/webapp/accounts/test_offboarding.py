"""Issue 20, point 5: a site admin deactivates an account, and at once its sessions end, its sockets
close, its API keys are revoked and its queued jobs stop; what it made stays, attributed to it."""
from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory
from tests.helpers import (
    ApiClient,
    chat_socket_path,
    make_key,
    membership,
    session_client,
    socket_for,
    tiny_request,
)
from webapp.accounts import services
from webapp.api.models import ApiKey
from webapp.studio import services as studio
from webapp.studio.models import Job

CLOSE_REVOKED = 4403


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def _logged_in(username: str) -> Client:
    client = Client()
    assert client.post(reverse("accounts:login"), {"login": username, "password": PASSWORD}).status_code == 302
    return client


@pytest.mark.django_db
def test_only_a_site_admin_deactivates_and_not_themselves(admin_user, team, alice, bob):
    with pytest.raises(PermissionDenied):
        services.user_deactivate(actor=alice, user=bob)  # a team owner is no site admin
    with pytest.raises(ValidationError, match="your own account"):
        services.user_deactivate(actor=admin_user, user=admin_user)
    bob.refresh_from_db()
    assert bob.is_active


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_server")  # the API counts requests per key in Redis
def test_deactivating_ends_sessions_keys_and_queued_jobs_and_keeps_the_work(admin_user, team, project, alice, bob,
                                                                            image, no_enqueue):
    client = _logged_in("bob")
    key = make_key(bob, project)
    queued = studio.job_create(project=project, actor=membership(bob, project), request=tiny_request())
    alices = studio.job_create(project=project, actor=membership(alice, project), request=tiny_request())
    assert ApiClient(key.secret).get("/v1/models").status_code == 200

    services.user_deactivate(actor=admin_user, user=bob)

    assert client.get(reverse("workspaces:dashboard")).status_code == 302  # logged out
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(bob.pk)]
    assert ApiKey.objects.get(pk=key.key.pk).revoked_at is not None
    assert ApiClient(key.secret).get("/v1/models").status_code == 401
    assert Job.objects.get(pk=queued.pk).status == "stopped"
    assert Job.objects.get(pk=alices.pk).status == "queued"  # someone else's job runs on
    image.refresh_from_db()
    assert image.author == bob  # his work stays his
    refused = Client()
    response = refused.post(reverse("accounts:login"), {"login": "bob", "password": PASSWORD})
    assert response["Location"] == reverse("account_inactive")
    assert refused.get(reverse("workspaces:dashboard")).status_code == 302


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_server")
def test_reactivating_lets_them_in_but_does_not_revive_keys(admin_user, team, project, bob):
    key = make_key(bob, project)
    services.user_deactivate(actor=admin_user, user=bob)
    services.user_reactivate(actor=admin_user, user=bob)
    _logged_in("bob")
    assert ApiKey.objects.get(pk=key.key.pk).revoked_at is not None
    assert ApiClient(key.secret).get("/v1/models").status_code == 401


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_server", "no_enqueue")
async def test_deactivating_closes_their_open_sockets(conversation, bob):
    admin_user = await sync_to_async(UserFactory)(username="root", is_staff=True, is_superuser=True)
    client = await sync_to_async(session_client)(bob)
    socket = socket_for(chat_socket_path(conversation), client)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    started = time.monotonic()
    await sync_to_async(services.user_deactivate)(actor=admin_user, user=bob)
    output = await socket.receive_output(timeout=1.0)
    while output["type"] != "websocket.close":
        output = await socket.receive_output(timeout=1.0)
    assert output.get("code") == CLOSE_REVOKED and time.monotonic() - started < 1.0


@pytest.mark.django_db
def test_the_admin_list_shows_last_login_teams_two_factor_and_keys(admin_user, team, project, bob, client_for):
    from allauth.mfa.models import Authenticator

    Authenticator.objects.create(user=bob, type=Authenticator.Type.TOTP, data={"secret": "x"})
    response = client_for(admin_user).get("/admin/accounts/user/")
    assert response.status_code == 200
    rows = {row.username: row for row in response.context["cl"].result_list}
    assert "Acme (member)" in response.context["cl"].model_admin.teams(rows["bob"])
    assert rows["bob"].has_two_factor and not rows["alice"].has_two_factor
    assert b"Two-factor" in response.content and b"Live API keys" in response.content


@pytest.mark.django_db
def test_the_admin_action_deactivates_through_the_service(admin_user, team, bob, client_for):
    client = client_for(admin_user)
    bobs_client = _logged_in("bob")
    client.post("/admin/accounts/user/", {"action": "deactivate", "_selected_action": [bob.pk]})
    bob.refresh_from_db()
    assert not bob.is_active
    assert bobs_client.get(reverse("workspaces:dashboard")).status_code == 302


@pytest.mark.django_db
def test_an_outsider_cannot_reach_the_admin_list(team, mallory, client_for):
    response = client_for(mallory).get("/admin/accounts/user/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_unticking_active_on_the_change_form_deactivates_through_the_service(admin_user, team, bob, client_for):
    client = client_for(admin_user)
    bobs_client = _logged_in("bob")
    form = client.get(f"/admin/accounts/user/{bob.pk}/change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "is_active"}
    data.update(username="bob", date_joined_0="2026-01-01", date_joined_1="00:00:00", groups=[], user_permissions=[])
    data.pop("last_login", None)
    data.pop("password", None)
    response = client.post(f"/admin/accounts/user/{bob.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    bob.refresh_from_db()
    assert not bob.is_active
    assert bobs_client.get(reverse("workspaces:dashboard")).status_code == 302


@pytest.mark.django_db
def test_deactivating_revokes_the_invite_links_they_made(admin_user, team, alice):
    from webapp.workspaces import services as workspace_services
    from webapp.workspaces.models import Membership

    invite = workspace_services.invite_create(actor=Membership.objects.get(team=team, user=alice))
    services.user_deactivate(actor=admin_user, user=alice)
    services.user_reactivate(actor=admin_user, user=alice)
    invite.refresh_from_db()
    assert not invite.is_usable

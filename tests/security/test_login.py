"""Login throttling (django-axes), first-run setup token, invite-only signup."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory
from webapp.accounts import services
from webapp.accounts.models import User

pytestmark = pytest.mark.django_db

LOGIN_URLS = ["/accounts/login/", "/admin/login/"]


def _fail(client, url: str, username: str, address: str = "10.0.0.1"):
    return client.post(url, {"username": username, "password": "wrong guess"}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", LOGIN_URLS)
def test_an_account_is_locked_from_the_guessing_address_only(client, settings, url):
    UserFactory(username="alice", is_staff=True)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _fail(client, url, "alice")
    response = client.post(url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert b"Too many failed logins" in response.content
    # Not by username alone (issue 23, finding 10): alice from elsewhere still logs in.
    other = client.post(url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 302


def test_an_address_is_locked_after_failures_across_accounts(client, settings):
    UserFactory(username="bob")
    for n in range(settings.AXES_FAILURE_LIMIT):
        _fail(client, "/accounts/login/", f"guess{n}", address="10.0.0.7")
    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 429


def test_a_forwarded_for_header_does_not_dodge_the_lockout(client, settings):
    UserFactory(username="alice")
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": f"x{n}", "password": "no"}, REMOTE_ADDR="10.0.0.8",
                    HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.8",
                           HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_a_good_login_below_the_limit_works(client):
    UserFactory(username="alice")
    _fail(client, "/accounts/login/", "alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302


def _signup(client, username: str, query: str = "", **extra):
    return client.post(
        reverse("accounts:signup") + query,
        {"username": username, "password1": PASSWORD, "password2": PASSWORD, **extra},
    )


def test_the_first_account_on_a_network_install_needs_the_setup_token(client, settings, django_capture_on_commit_callbacks):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = True
    response = _signup(client, "intruder")
    assert response.status_code == 200 and not User.objects.exists()
    assert b"setup token" in response.content
    assert _signup(client, "intruder", setup_token="not-it").status_code == 200
    assert not User.objects.exists()
    token = services.setup_token()
    with django_capture_on_commit_callbacks(execute=True):
        assert _signup(client, "admin", setup_token=token).status_code == 302
    assert User.objects.get(username="admin").is_superuser
    assert not services.setup_token_path().exists()  # one-time


def test_the_setup_token_is_enforced_by_the_service(settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = True
    with pytest.raises(ValidationError):
        services.user_signup(username="intruder", email="", password=PASSWORD)


def test_a_loopback_install_needs_no_setup_token(client, settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False
    assert _signup(client, "admin").status_code == 302


def test_setup_token_command_prints_a_signup_link(settings, capsys):
    from django.core.management import call_command

    settings.ATELIER_SETUP_TOKEN_REQUIRED = True
    call_command("setup_token")
    out = capsys.readouterr().out
    assert services.setup_token() in out and "/accounts/signup/?setup=" in out


def test_invite_only_signup_refuses_strangers(client, settings):
    settings.ATELIER_SIGNUP = "invite"
    UserFactory(username="alice")
    response = _signup(client, "stranger")
    assert not User.objects.filter(username="stranger").exists()
    assert b"invitation" in response.content


def test_invite_only_signup_lets_an_invited_person_in(client, settings, team, alice):
    from webapp.workspaces import services as workspace_services
    from webapp.workspaces.models import Membership

    settings.ATELIER_SIGNUP = "invite"
    invite = workspace_services.invite_create(actor=Membership.objects.get(team=team, user=alice))
    client.get(invite.get_absolute_url())  # the anonymous visit of a valid link
    response = _signup(client, "dave", f"?next={invite.get_absolute_url()}")
    assert response.status_code == 302
    assert User.objects.filter(username="dave").exists()

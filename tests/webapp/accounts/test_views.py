from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory
from webapp.accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_setup_token(settings):
    """The test client is no local browser (its host is "testserver"): these tests are about signup itself;
    tests/security/test_setup_token.py covers the first-run token."""
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False


def _signup(client, username: str):
    return client.post(
        reverse("accounts:signup"),
        {"username": username, "email": f"{username}@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )


def test_signup_logs_the_new_user_in(client):
    response = _signup(client, "alice")
    assert response.status_code == 302
    assert client.get(reverse("workspaces:dashboard")).context["user"].username == "alice"


def test_first_account_becomes_site_admin_and_later_ones_do_not(client):
    _signup(client, "alice")
    client.logout()
    _signup(client, "bob")
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert (alice.is_superuser, alice.is_staff) == (True, True)
    assert (bob.is_superuser, bob.is_staff) == (False, False)


def test_passwords_are_hashed_with_argon2(client):
    _signup(client, "alice")
    assert User.objects.get(username="alice").password.startswith("argon2")


def test_signup_shows_errors_next_to_the_field(client):
    response = client.post(
        reverse("accounts:signup"), {"username": "alice", "password1": PASSWORD, "password2": "different"}
    )
    assert response.status_code == 200
    assert "password2" in response.context["form"].errors
    assert b'id_password2-error' in response.content


def test_signup_follows_a_safe_next_url_only(client):
    response = client.post(
        reverse("accounts:signup") + "?next=https://evil.example/",
        {"username": "alice", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response["Location"] == reverse("workspaces:dashboard")


def test_login_and_logout(client):
    UserFactory(username="alice")
    response = client.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    client.post(reverse("accounts:logout"))
    response = client.get(reverse("workspaces:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_password_change_takes_effect(client_for):
    alice = UserFactory(username="alice")
    client = client_for(alice)
    response = client.post(
        reverse("accounts:password_change"),
        {"oldpassword": PASSWORD, "password1": "a much newer secret 42", "password2": "a much newer secret 42"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a much newer secret 42")


def test_django_admin_opens_for_the_site_admin(client):
    _signup(client, "alice")
    assert client.get(reverse("admin:index")).status_code == 200


def test_closed_signup_refuses_everyone_but_the_first_account(client, settings):
    settings.ATELIER_SIGNUP = "closed"
    assert _signup(client, "alice").status_code == 302  # the site's first account: its admin
    client.logout()
    response = _signup(client, "bob")
    assert not User.objects.filter(username="bob").exists()
    assert b"Signup on this site is closed" in response.content


def test_closed_signup_is_enforced_by_the_service(settings):
    from django.core.exceptions import ValidationError

    from webapp.accounts.services import user_signup

    settings.ATELIER_SIGNUP = "closed"
    UserFactory(username="alice")
    with pytest.raises(ValidationError, match="closed"):
        user_signup(username="bob", email="", password=PASSWORD)


def test_login_by_email_address(client):
    UserFactory(username="alice", email="alice@example.com")
    response = client.post(reverse("accounts:login"), {"login": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("workspaces:dashboard")).context["user"].username == "alice"


def test_a_wrong_password_gets_the_form_back_with_an_error(client):
    UserFactory(username="alice")
    response = client.post(reverse("accounts:login"), {"login": "alice", "password": "not it"})
    assert response.status_code == 200
    assert b"not correct" in response.content

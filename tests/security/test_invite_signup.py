"""Issue 23, finding 5: opening an invite link once is not a pass to invite-only signup for ever.

Signup checks the invite in the session again, and spends it: the new account joins the
invite's team, and the link is used up, in the same transaction as the account.
"""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD
from webapp.accounts.models import User
from webapp.workspaces import services
from webapp.workspaces.models import Invite, Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite_only(settings, alice):
    settings.ATELIER_SIGNUP = "invite"
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False


def _invite(team, alice, role=Role.MEMBER) -> Invite:
    return services.invite_create(actor=Membership.objects.get(team=team, user=alice), role=role)


def _signup(client, username: str):
    return client.post(reverse("accounts:signup"), {"username": username, "password1": PASSWORD, "password2": PASSWORD})


def test_one_invite_does_not_open_signup_to_every_visitor(client, invite_only, team, alice):
    """Each visitor opened the single-use link and signed up, and nobody ever accepted it: endless accounts."""
    from django.test import Client

    invite = _invite(team, alice)
    client.get(invite.get_absolute_url())
    assert _signup(client, "dave").status_code == 302
    stranger = Client()
    stranger.get(invite.get_absolute_url())
    _signup(stranger, "eve")
    assert not User.objects.filter(username="eve").exists()


def test_signup_spends_the_invite_and_joins_its_team(client, invite_only, team, alice):
    invite = _invite(team, alice, role=Role.VIEWER)
    client.get(invite.get_absolute_url())
    _signup(client, "dave")
    dave = User.objects.get(username="dave")
    invite.refresh_from_db()
    assert (invite.accepted_by, invite.is_usable) == (dave, False)
    assert Membership.objects.get(team=team, user=dave).role == Role.VIEWER


def test_an_invite_revoked_after_it_was_opened_no_longer_opens_signup(client, invite_only, team, alice):
    invite = _invite(team, alice)
    client.get(invite.get_absolute_url())
    services.invite_revoke(actor=Membership.objects.get(team=team, user=alice), invite=invite)
    response = _signup(client, "dave")
    assert not User.objects.filter(username="dave").exists()
    assert b"invitation" in response.content


def test_an_invite_that_expired_after_it_was_opened_no_longer_opens_signup(client, invite_only, team, alice):
    invite = _invite(team, alice)
    client.get(invite.get_absolute_url())
    Invite.objects.filter(pk=invite.pk).update(expires_at=timezone.now())
    _signup(client, "dave")
    assert not User.objects.filter(username="dave").exists()


def test_an_invite_used_by_someone_else_no_longer_opens_signup(client, invite_only, team, alice, bob, mallory):
    invite = _invite(team, alice)
    client.get(invite.get_absolute_url())
    services.invite_accept(invite=invite, user=mallory)  # another person took the link first
    _signup(client, "dave")
    assert not User.objects.filter(username="dave").exists()

"""Invites: an admin cannot reach the owner role through an owner's link, and invites
die with their creator's membership (or their creator's power to make them)."""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.factories import MembershipFactory, UserFactory, member_make
from webapp.workspaces import selectors, services
from webapp.workspaces.models import Invite, Membership, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def dave(team):
    """An admin of Acme (here, not the suite's plain member)."""
    return member_make(team, "dave", Role.ADMIN)


def member(team, user) -> Membership:
    return Membership.objects.select_related("team", "user").get(team=team, user=user)


def test_an_admin_does_not_see_owner_invites_on_the_team_page(team, alice, dave, client_for):
    owner_invite = services.invite_create(actor=member(team, alice), role=Role.OWNER)
    member_invite = services.invite_create(actor=member(team, alice), role=Role.MEMBER)
    page = client_for(dave).get(f"/teams/{team.pk}/").content.decode()
    assert owner_invite.token not in page
    assert member_invite.token in page
    assert owner_invite.token in client_for(alice).get(f"/teams/{team.pk}/").content.decode()


def test_open_invites_hide_owner_links_from_admins(team, alice, dave):
    services.invite_create(actor=member(team, alice), role=Role.OWNER)
    shown = selectors.team_open_invites(team=team, viewer=member(team, dave))
    assert all(invite.role != Role.OWNER for invite in shown)


def test_an_admin_cannot_revoke_an_owner_invite(team, alice, dave):
    invite = services.invite_create(actor=member(team, alice), role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.invite_revoke(actor=member(team, dave), invite=invite)


def test_removing_a_member_revokes_their_invites(team, alice, dave):
    invite = services.invite_create(actor=member(team, dave), role=Role.ADMIN)
    services.membership_remove(actor=member(team, alice), membership=member(team, dave))
    invite.refresh_from_db()
    assert invite.revoked_at is not None
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=UserFactory(username="erin"))


def test_a_removed_admin_cannot_come_back_through_their_own_link(team, alice, dave):
    invite = services.invite_create(actor=member(team, dave), role=Role.ADMIN)
    services.membership_remove(actor=member(team, alice), membership=member(team, dave))
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=dave)
    assert not Membership.objects.filter(team=team, user=dave).exists()


def test_an_invite_whose_creator_lost_the_power_to_make_it_is_refused(team, alice, dave):
    """Even when the membership goes without the service (the admin, a script)."""
    invite = services.invite_create(actor=member(team, dave), role=Role.MEMBER)
    Membership.objects.filter(team=team, user=dave).update(role=Role.MEMBER)
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=UserFactory(username="erin"))


def test_an_owner_invite_from_a_demoted_owner_is_refused(team, alice, dave):
    MembershipFactory(team=team, user=UserFactory(username="frank"), role=Role.OWNER)
    invite = services.invite_create(actor=member(team, alice), role=Role.OWNER)
    Membership.objects.filter(team=team, user=alice).update(role=Role.ADMIN)
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=UserFactory(username="erin"))


def test_demoting_an_admin_revokes_their_invites(team, alice, dave):
    invite = services.invite_create(actor=member(team, dave), role=Role.MEMBER)
    services.membership_change_role(actor=member(team, alice), membership=member(team, dave), role=Role.MEMBER)
    assert Invite.objects.get(pk=invite.pk).revoked_at is not None

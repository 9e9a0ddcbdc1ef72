from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from tests.factories import UserFactory
from webapp.workspaces import services
from webapp.workspaces.models import Membership, Role

pytestmark = pytest.mark.django_db


def member(team, user) -> Membership:
    return Membership.objects.select_related("team", "user").get(team=team, user=user)


def test_team_create_makes_the_creator_owner(alice):
    team = services.team_create(name="  Acme  ", owner=alice)
    assert team.name == "Acme"
    assert member(team, alice).role == Role.OWNER


def test_invite_accept_adds_the_member_with_the_invited_role(team, alice):
    dave = UserFactory(username="dave")
    invite = services.invite_create(actor=member(team, alice), role=Role.VIEWER)
    membership = services.invite_accept(invite=invite, user=dave)
    assert membership.role == Role.VIEWER
    invite.refresh_from_db()
    assert invite.accepted_by == dave


def test_invite_is_single_use(team, alice):
    invite = services.invite_create(actor=member(team, alice))
    services.invite_accept(invite=invite, user=UserFactory(username="dave"))
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=UserFactory(username="erin"))


def test_expired_invite_is_refused(team, alice):
    invite = services.invite_create(actor=member(team, alice))
    invite.expires_at = timezone.now() - timedelta(seconds=1)
    invite.save()
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=UserFactory(username="dave"))


def test_revoked_invite_is_refused(team, alice):
    invite = services.invite_create(actor=member(team, alice))
    services.invite_revoke(actor=member(team, alice), invite=invite)
    with pytest.raises(ValidationError):
        services.invite_accept(invite=invite, user=UserFactory(username="dave"))


def test_accepting_an_invite_keeps_an_existing_members_role(team, alice, bob):
    invite = services.invite_create(actor=member(team, alice), role=Role.VIEWER)
    assert services.invite_accept(invite=invite, user=bob).role == Role.MEMBER


def test_member_cannot_invite(team, bob):
    with pytest.raises(PermissionDenied):
        services.invite_create(actor=member(team, bob))


def test_admin_cannot_invite_an_owner(team, alice, bob):
    services.membership_change_role(actor=member(team, alice), membership=member(team, bob), role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        services.invite_create(actor=member(team, bob), role=Role.OWNER)


def test_admin_changes_a_members_role(team, alice, bob, carol):
    services.membership_change_role(actor=member(team, alice), membership=member(team, bob), role=Role.ADMIN)
    services.membership_change_role(actor=member(team, bob), membership=member(team, carol), role=Role.MEMBER)
    assert member(team, carol).role == Role.MEMBER


def test_admin_cannot_demote_an_owner(team, alice, bob):
    services.membership_change_role(actor=member(team, alice), membership=member(team, bob), role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        services.membership_change_role(actor=member(team, bob), membership=member(team, alice), role=Role.MEMBER)


def test_last_owner_cannot_step_down(team, alice):
    with pytest.raises(ValidationError):
        services.membership_change_role(actor=member(team, alice), membership=member(team, alice), role=Role.ADMIN)


def test_last_owner_cannot_leave(team, alice):
    with pytest.raises(ValidationError):
        services.membership_remove(actor=member(team, alice), membership=member(team, alice))
    assert member(team, alice)


def test_an_owner_can_leave_once_another_owner_exists(team, alice, bob):
    services.membership_change_role(actor=member(team, alice), membership=member(team, bob), role=Role.OWNER)
    services.membership_remove(actor=member(team, alice), membership=member(team, alice))
    assert not Membership.objects.filter(team=team, user=alice).exists()


def test_member_can_leave_but_not_remove_others(team, bob, carol):
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=member(team, bob), membership=member(team, carol))
    services.membership_remove(actor=member(team, bob), membership=member(team, bob))
    assert not Membership.objects.filter(team=team, user=bob).exists()


def test_services_refuse_a_member_of_another_team(team, other_team, alice, mallory):
    with pytest.raises(PermissionDenied):
        services.membership_change_role(actor=member(other_team, mallory), membership=member(team, alice), role=Role.VIEWER)


def test_viewer_cannot_create_a_project(team, carol):
    with pytest.raises(PermissionDenied):
        services.project_create(actor=member(team, carol), name="Nope")


def test_project_names_are_unique_within_a_team(team, bob):
    services.project_create(actor=member(team, bob), name="Launch")
    with pytest.raises(ValidationError) as error:
        services.project_create(actor=member(team, bob), name="Launch")
    assert "name" in error.value.message_dict

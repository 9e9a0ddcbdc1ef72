"""ATELIER_OIDC_ROLE_MAP applied at a sign-on (workspaces.services.memberships_sync_from_groups): the map
manages only the memberships it granted, and never leaves a team without an owner."""
from __future__ import annotations

import pytest

from tests.factories import TeamFactory, UserFactory
from webapp.workspaces.models import Membership, Role
from webapp.workspaces.services import memberships_sync_from_groups

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def role_map(settings):
    settings.ATELIER_OIDC_ROLE_MAP = {"leads": ("Acme", "owner"), "designers": ("Acme", "member"),
                                      "b": ("Studio B", "viewer"), "twins": ("Twin", "member")}


def test_the_highest_role_of_the_groups_wins_and_follows_them(team):
    erin = UserFactory(username="erin")
    memberships_sync_from_groups(user=erin, groups=["designers"])
    assert Membership.objects.get(user=erin, team=team).role == Role.MEMBER
    memberships_sync_from_groups(user=erin, groups=["designers", "leads"])
    assert Membership.objects.get(user=erin, team=team).role == Role.OWNER
    memberships_sync_from_groups(user=erin, groups=["designers"])
    assert Membership.objects.get(user=erin, team=team).role == Role.MEMBER


def test_the_map_never_removes_or_demotes_a_team_s_last_owner():
    acme = TeamFactory(name="Acme")
    erin = UserFactory(username="erin")
    memberships_sync_from_groups(user=erin, groups=["leads"])
    assert Membership.objects.get(user=erin, team=acme).role == Role.OWNER
    memberships_sync_from_groups(user=erin, groups=["designers"])
    assert Membership.objects.get(user=erin, team=acme).role == Role.OWNER
    memberships_sync_from_groups(user=erin, groups=[])
    assert Membership.objects.filter(user=erin, team=acme).exists()


def test_a_team_name_that_two_teams_share_grants_nothing():
    TeamFactory(name="Twin")
    TeamFactory(name="Twin")
    erin = UserFactory(username="erin")
    memberships_sync_from_groups(user=erin, groups=["twins"])
    assert not Membership.objects.filter(user=erin).exists()


def test_groups_of_other_teams_leave_each_other_alone(team):
    studio_b = TeamFactory(name="Studio B")
    erin = UserFactory(username="erin")
    memberships_sync_from_groups(user=erin, groups=["designers", "b"])
    memberships_sync_from_groups(user=erin, groups=["b"])
    assert not Membership.objects.filter(user=erin, team=team).exists()
    assert Membership.objects.get(user=erin, team=studio_b).role == Role.VIEWER

"""Issue 20, point 3: a team owner requires two-factor; members without it set it up before they
reach the team's projects. API keys are not asked."""
from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from tests.helpers import ApiClient, make_key
from webapp.workspaces import services
from webapp.workspaces.models import Membership, Team

pytestmark = pytest.mark.django_db


def membership(user, team) -> Membership:
    return Membership.objects.select_related("team", "user").get(team=team, user=user)


def _give_totp(user) -> None:
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})


@pytest.fixture
def required(team, alice):
    _give_totp(alice)
    services.team_two_factor_set(actor=membership(alice, team), required=True)
    return team


def test_an_owner_needs_two_factor_of_their_own_to_require_it(team, alice):
    with pytest.raises(ValidationError, match="your own account first"):
        services.team_two_factor_set(actor=membership(alice, team), required=True)
    _give_totp(alice)
    assert services.team_two_factor_set(actor=membership(alice, team), required=True).require_two_factor


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_only_owners_require_two_factor(team, who, request):
    user = request.getfixturevalue(who)
    _give_totp(user)
    with pytest.raises(PermissionDenied):
        services.team_two_factor_set(actor=membership(user, team), required=True)


def test_the_owner_turns_it_on_from_the_team_page(client_for, team, alice):
    _give_totp(alice)
    client = client_for(alice)
    assert b"Require two-factor" in client.get(reverse("workspaces:team_detail", args=[team.pk])).content
    client.post(reverse("workspaces:team_two_factor", args=[team.pk]), {"required": "on"})
    assert Team.objects.get(pk=team.pk).require_two_factor


def test_a_viewer_cannot_change_the_requirement(client_for, team, carol):
    response = client_for(carol).post(reverse("workspaces:team_two_factor", args=[team.pk]), {"required": "on"})
    assert response.status_code == 403
    assert not Team.objects.get(pk=team.pk).require_two_factor


def test_an_outsider_cannot_change_the_requirement(client_for, team, mallory):
    response = client_for(mallory).post(reverse("workspaces:team_two_factor", args=[team.pk]), {"required": "on"})
    assert response.status_code == 404
    assert not Team.objects.get(pk=team.pk).require_two_factor


def test_a_member_without_two_factor_is_sent_to_set_it_up(client_for, required, project, bob):
    client = client_for(bob)
    for url in (project.get_absolute_url(), required.get_absolute_url(),
                reverse("chat:index", args=[project.pk])):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("mfa_index") + "?next=")
    page = client.get(project.get_absolute_url(), follow=True)
    assert b"Acme requires two-factor" in page.content


def test_a_member_with_two_factor_goes_in(client_for, required, project, bob):
    _give_totp(bob)
    assert client_for(bob).get(project.get_absolute_url()).status_code == 200


def test_other_teams_and_the_dashboard_are_not_affected(client_for, required, bob, other_project, mallory):
    assert client_for(bob).get(reverse("workspaces:dashboard")).status_code == 200
    assert client_for(mallory).get(other_project.get_absolute_url()).status_code == 200


def test_a_member_may_still_leave_the_team(client_for, required, bob):
    mine = membership(bob, required)
    client_for(bob).post(reverse("workspaces:member_remove", args=[required.pk, mine.pk]))
    assert not required.memberships.filter(user=bob).exists()


@pytest.mark.usefixtures("redis_server")  # the API counts requests per key in Redis
def test_api_keys_are_not_asked_for_a_second_factor(team, alice, bob, project):
    key = make_key(bob, project)
    _give_totp(alice)
    services.team_two_factor_set(actor=membership(alice, team), required=True)
    assert ApiClient(key.secret).get("/v1/models").status_code == 200

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import UserFactory
from webapp.workspaces.models import Invite, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(team, alice):
    return Invite.objects.create(team=team, role=Role.MEMBER, created_by=alice)


def _urls(team, project, invite, bob):
    bob_membership = Membership.objects.get(team=team, user=bob)
    return {
        "workspaces:team_detail": ("get", reverse("workspaces:team_detail", args=[team.pk])),
        "workspaces:invite_create": ("post", reverse("workspaces:invite_create", args=[team.pk])),
        "workspaces:invite_revoke": ("post", reverse("workspaces:invite_revoke", args=[team.pk, invite.pk])),
        "workspaces:member_role": ("post", reverse("workspaces:member_role", args=[team.pk, bob_membership.pk])),
        "workspaces:member_remove": ("post", reverse("workspaces:member_remove", args=[team.pk, bob_membership.pk])),
        "workspaces:project_create": ("get", reverse("workspaces:project_create", args=[team.pk])),
        "workspaces:project_detail": ("get", reverse("workspaces:project_detail", args=[project.pk])),
        "workspaces:project_settings": ("get", reverse("workspaces:project_settings", args=[project.pk])),
        "workspaces:project_delete": ("post", reverse("workspaces:project_delete", args=[project.pk])),
    }


@pytest.mark.parametrize(
    "url_name",
    [
        "workspaces:team_detail",
        "workspaces:invite_create",
        "workspaces:invite_revoke",
        "workspaces:member_role",
        "workspaces:member_remove",
        "workspaces:project_create",
        "workspaces:project_detail",
        "workspaces:project_settings",
        "workspaces:project_delete",
    ],
)
def test_outsider_gets_404_and_changes_nothing(url_name, client_for, team, project, invite, bob, mallory, other_team):
    method, url = _urls(team, project, invite, bob)[url_name]
    response = getattr(client_for(mallory), method)(url, {"role": "owner", "name": "x"})
    assert response.status_code == 404
    assert b"Acme" not in response.content and b"Launch" not in response.content
    assert Membership.objects.get(team=team, user=bob).role == Role.MEMBER
    assert Project.objects.filter(pk=project.pk).exists()
    invite.refresh_from_db()
    assert invite.revoked_at is None


@pytest.mark.parametrize("url_name", ["workspaces:team_detail", "workspaces:project_detail"])
def test_anonymous_is_sent_to_login(url_name, client, team, project, invite, bob):
    _, url = _urls(team, project, invite, bob)[url_name]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize(
    "url_name",
    [
        "workspaces:invite_create",
        "workspaces:invite_revoke",
        "workspaces:member_role",
        "workspaces:project_create",
        "workspaces:project_settings",
        "workspaces:project_delete",
    ],
)
def test_viewer_gets_403_on_writes(url_name, client_for, team, project, invite, bob, carol):
    _, url = _urls(team, project, invite, bob)[url_name]
    response = client_for(carol).post(url, {"role": "owner", "name": "Renamed", "description": ""})
    assert response.status_code == 403
    assert Membership.objects.get(team=team, user=bob).role == Role.MEMBER
    assert Project.objects.get(pk=project.pk).name == "Launch"


def test_dashboard_lists_my_teams_and_projects_only(client_for, project, other_project, bob):
    response = client_for(bob).get(reverse("workspaces:dashboard"))
    assert b"Launch" in response.content
    assert b"Secret" not in response.content and b"Umbrella" not in response.content


def test_team_create_redirects_to_the_new_team(client_for, alice):
    response = client_for(alice).post(reverse("workspaces:team_create"), {"name": "Design"})
    assert response.status_code == 302
    assert Membership.objects.get(user=alice, team__name="Design").role == Role.OWNER


def test_team_create_shows_the_error_next_to_the_name(client_for, alice):
    response = client_for(alice).post(reverse("workspaces:team_create"), {"name": ""})
    assert response.status_code == 200
    assert b'id="id_name-error"' in response.content


def test_member_creates_a_project(client_for, team, bob):
    response = client_for(bob).post(
        reverse("workspaces:project_create", args=[team.pk]), {"name": "Docs", "description": "Manuals"}
    )
    project = Project.objects.get(team=team, name="Docs")
    assert response["Location"] == project.get_absolute_url()


def test_duplicate_project_name_is_shown_on_the_field(client_for, team, project, bob):
    response = client_for(bob).post(reverse("workspaces:project_create", args=[team.pk]), {"name": "Launch"})
    assert response.status_code == 200
    assert "name" in response.context["form"].errors


def test_viewer_reads_the_project(client_for, project, carol):
    response = client_for(carol).get(project.get_absolute_url())
    assert response.status_code == 200
    assert b"Launch" in response.content


def test_owner_creates_an_invite_link_that_a_new_user_accepts(client_for, team, alice):
    client_for(alice).post(reverse("workspaces:invite_create", args=[team.pk]), {"role": "member"})
    invite = Invite.objects.get(team=team)
    dave = UserFactory(username="dave")
    dave_client = client_for(dave)
    page = dave_client.get(invite.get_absolute_url())
    assert b"Join Acme" in page.content
    dave_client.post(invite.get_absolute_url())
    assert Membership.objects.get(team=team, user=dave).role == Role.MEMBER
    assert b"Acme" in dave_client.get(reverse("workspaces:dashboard")).content


def test_anonymous_invite_page_offers_signup_that_returns_here(client, invite):
    response = client.get(invite.get_absolute_url())
    assert response.status_code == 200
    assert reverse("accounts:signup").encode() in response.content
    assert b"next=" in response.content


def test_unknown_invite_token_is_404(client_for, alice):
    assert client_for(alice).get(reverse("workspaces:invite_accept", args=["nope"])).status_code == 404


def test_owner_changes_a_role_from_the_team_page(client_for, team, alice, bob):
    membership = Membership.objects.get(team=team, user=bob)
    client_for(alice).post(reverse("workspaces:member_role", args=[team.pk, membership.pk]), {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_last_owner_leaving_shows_an_error_and_stays(client_for, team, alice):
    membership = Membership.objects.get(team=team, user=alice)
    response = client_for(alice).post(
        reverse("workspaces:member_remove", args=[team.pk, membership.pk]), follow=True
    )
    assert b"last owner" in response.content
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_htmx_requests_carry_the_csrf_token(client_for, project, bob):
    response = client_for(bob).get(project.get_absolute_url())
    assert b'hx-headers=\'{"X-CSRFToken": "' in response.content
    assert b"django_htmx/htmx-2" in response.content or b"htmx" in response.content

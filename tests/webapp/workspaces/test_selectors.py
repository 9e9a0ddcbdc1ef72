from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from webapp.workspaces import selectors, services
from webapp.workspaces.models import Project

pytestmark = pytest.mark.django_db


def test_project_get_for_member_returns_the_project_with_the_role(project, bob):
    found = selectors.project_get_for_member(user=bob, project_id=project.pk)
    assert found == project
    assert found.membership.role == "member"


def test_project_get_for_member_hides_the_project_from_an_outsider(project, mallory):
    with pytest.raises(Http404):
        selectors.project_get_for_member(user=mallory, project_id=project.pk)


def test_project_get_for_member_hides_the_project_from_anonymous(project):
    with pytest.raises(Http404):
        selectors.project_get_for_member(user=AnonymousUser(), project_id=project.pk)


def test_project_get_for_member_lets_a_viewer_see_and_leaves_the_write_to_the_service(project, carol):
    seen = selectors.project_get_for_member(user=carol, project_id=project.pk)
    assert seen.membership.role == "viewer"
    with pytest.raises(PermissionDenied):
        services.project_update(project=seen, actor=seen.membership, name="Renamed", description="")
    assert Project.objects.get(pk=project.pk).name == project.name


def test_team_list_for_user_lists_only_their_teams(team, other_team, alice, mallory):
    assert list(selectors.team_list_for_user(user=alice)) == [team]
    assert list(selectors.team_list_for_user(user=mallory)) == [other_team]


def test_project_list_for_user_lists_only_their_projects(project, other_project, bob):
    assert list(selectors.project_list_for_user(user=bob)) == [project]

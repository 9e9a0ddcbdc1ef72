"""Reads. Every team or project is fetched through a selector scoped to the
user's memberships: outsiders get 404 and never learn that the object exists."""
from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from webapp.workspaces.models import Invite, Membership, Project, Role, Team
from webapp.workspaces.permissions import membership_may


def _require_user(user: Any) -> None:
    if user is None or not user.is_authenticated:
        raise Http404("Not found")


def membership_get(*, user: Any, team_id: int) -> Membership:
    """The user's membership of a team: 404 for outsiders. What the role may do is the services' to check."""
    _require_user(user)
    try:
        membership = Membership.objects.select_related("team").get(team_id=team_id, user=user)
    except (Membership.DoesNotExist, ValueError, TypeError):
        raise Http404("No such team") from None
    return membership


def team_list_for_user(*, user: Any) -> QuerySet[Team]:
    _require_user(user)
    return (
        Team.objects.filter(memberships__user=user)
        .prefetch_related(Prefetch("projects", queryset=Project.objects.order_by("name")))
        .order_by("name", "id")
    )


def team_members(*, team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("joined_at", "id")


def team_open_invites(*, team: Team, viewer: Membership) -> list[Invite]:
    """The usable invites ``viewer`` may see: managers see them, and owner-role links only owners."""
    if not membership_may(actor=viewer, action="team.manage_members"):
        return []
    invites = team.invites.select_related("created_by")
    if not membership_may(actor=viewer, action="team.manage_owners"):
        invites = invites.exclude(role=Role.OWNER)
    return [invite for invite in invites if invite.is_usable and invite_creator_may_grant(invite=invite)]


def invite_creator_may_grant(*, invite: Invite) -> bool:
    """Whether the invite's creator still holds a role that may make this invite.

    An invite is a delegation of its creator's power: when they leave, are
    removed or are demoted, their links stop working (whether or not the
    service that changed them revoked the links too).
    """
    if invite.created_by_id is None:
        return False
    creator = Membership.objects.filter(team_id=invite.team_id, user_id=invite.created_by_id).first()
    if not membership_may(actor=creator, action="team.manage_members"):
        return False
    return invite.role != Role.OWNER or membership_may(actor=creator, action="team.manage_owners")


def team_member_get(*, team: Team, membership_id: int) -> Membership:
    try:
        return team.memberships.select_related("user").get(pk=membership_id)
    except (Membership.DoesNotExist, ValueError, TypeError):
        raise Http404("No such member") from None


def team_invite_get(*, team: Team, invite_id: int) -> Invite:
    try:
        return team.invites.get(pk=invite_id)
    except (Invite.DoesNotExist, ValueError, TypeError):
        raise Http404("No such invite") from None


def invite_get_by_token(*, token: str) -> Invite:
    """An invite by its secret token (the token itself is the credential)."""
    try:
        return Invite.objects.select_related("team", "created_by").get(token=token)
    except Invite.DoesNotExist:
        raise Http404("No such invite") from None


def project_list_for_user(*, user: Any) -> QuerySet[Project]:
    _require_user(user)
    return Project.objects.filter(team__memberships__user=user).select_related("team").order_by("team__name", "name")


def project_get_for_member(*, user: Any, project_id: int) -> Project:
    """A project the user can see, with ``project.membership`` set; Http404 for outsiders (and anonymous users).

    Every member sees it, viewers included: what the role may do there is the
    services' to check (``webapp.workspaces.permissions``).
    """
    _require_user(user)
    try:
        project = Project.objects.select_related("team").get(pk=project_id, team__memberships__user=user)
    except (Project.DoesNotExist, ValueError, TypeError):
        raise Http404("No such project") from None
    project.membership = Membership.objects.get(team_id=project.team_id, user=user)
    return project


def team_requiring_two_factor(*, user: Any, team_id: int | None = None, project_id: int | None = None) -> Team | None:
    """The team (named by ``team_id``, or by ``project_id``'s project) if ``user`` is its member and it
    requires two-factor; otherwise None (an outsider gets the page's own 404)."""
    teams = Team.objects.filter(require_two_factor=True, memberships__user=user)
    if team_id is not None:
        return teams.filter(pk=team_id).first()
    if project_id is not None:
        return teams.filter(projects__pk=project_id).first()
    return None


def live_two_factor_gate(*, user: Any, url_kwargs: dict[str, Any]) -> bool:
    """A live connection under a project (``project_id`` in its route) of a team that requires two-factor
    is open only to a member with two-factor (registered with core.access in WorkspacesConfig.ready)."""
    from webapp.accounts.selectors import user_has_two_factor

    project_id = url_kwargs.get("project_id")
    if project_id is None or team_requiring_two_factor(user=user, project_id=project_id) is None:
        return True
    return user_has_two_factor(user=user)

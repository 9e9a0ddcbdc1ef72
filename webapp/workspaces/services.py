"""Writes for teams, memberships, invites and projects.

Services check the actor's role themselves, through the one gate
(``webapp.workspaces.permissions``), so every entry point (views, the API, the
admin shell) gets the same rules. Rule violations raise Django's
ValidationError with a message fit for the user; role violations raise
PermissionDenied.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.core import bounds
from webapp.core.access import access_revoke
from webapp.workspaces.models import ROLE_RANK, Invite, Membership, Project, Role, Team
from webapp.workspaces.permissions import membership_may, membership_require
from webapp.workspaces.selectors import invite_creator_may_grant


@transaction.atomic
def team_create(*, name: str, owner: Any) -> Team:
    """Create a team whose first member is ``owner`` with the owner role."""
    bounds.check_lengths(name=(name.strip(), bounds.TEAM_NAME))
    team = Team.objects.create(name=name.strip())
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return team


def invite_create(*, actor: Membership, role: str = Role.MEMBER) -> Invite:
    """A fresh single-use invite link to ``actor``'s team. Only owners grant owner."""
    membership_require(actor=actor, action="team.manage_members")
    if role == Role.OWNER:
        membership_require(actor=actor, action="team.manage_owners")
    return Invite.objects.create(team=actor.team, role=role, created_by=actor.user)


def invite_revoke(*, actor: Membership, invite: Invite) -> None:
    membership_require(actor=actor, action="team.manage_members")
    if invite.team_id != actor.team_id:
        raise PermissionDenied("That invite belongs to another team.")
    if invite.role == Role.OWNER:
        membership_require(actor=actor, action="team.manage_owners")
    invite.revoked_at = timezone.now()
    invite.save(update_fields=["revoked_at"])


@transaction.atomic
def invite_accept(*, invite: Invite, user: Any) -> Membership:
    """Join the invite's team. An existing member keeps their current role."""
    invite = Invite.objects.select_for_update().get(pk=invite.pk)
    existing = Membership.objects.filter(team_id=invite.team_id, user=user).first()
    if existing is not None:
        return existing
    if not invite.is_usable or not invite_creator_may_grant(invite=invite):
        raise ValidationError("This invite link has expired or was already used. Ask for a new one.")
    membership = Membership.objects.create(team_id=invite.team_id, user=user, role=invite.role)
    invite.accepted_by = user
    invite.accepted_at = timezone.now()
    invite.save(update_fields=["accepted_by", "accepted_at"])
    return membership


class SignupInvites:
    """Invite-only signup's check and spend (registered with accounts in WorkspacesConfig.ready)."""

    def usable(self, invite_id: int) -> bool:
        invite = Invite.objects.filter(pk=invite_id).first()
        return invite is not None and invite.is_usable and invite_creator_may_grant(invite=invite)

    def redeem(self, invite_id: int, user: Any) -> None:
        invite = Invite.objects.filter(pk=invite_id).first()
        if invite is None:
            raise ValidationError("This invite link has expired or was already used. Ask for a new one.")
        invite_accept(invite=invite, user=user)


def _invites_revoke_by(*, team_id: int, user_id: int, roles: list[str] | None = None) -> None:
    """Revoke the open invites that ``user_id`` made in the team (only ``roles`` when given)."""
    invites = Invite.objects.filter(team_id=team_id, created_by_id=user_id, accepted_at__isnull=True, revoked_at__isnull=True)
    if roles is not None:
        invites = invites.filter(role__in=roles)
    invites.update(revoked_at=timezone.now())


def _invites_revoke_beyond(*, membership: Membership) -> None:
    """After a role change: revoke the invites the member could no longer make."""
    if not membership_may(actor=membership, action="team.manage_members"):
        _invites_revoke_by(team_id=membership.team_id, user_id=membership.user_id)
    elif not membership_may(actor=membership, action="team.manage_owners"):
        _invites_revoke_by(team_id=membership.team_id, user_id=membership.user_id, roles=[Role.OWNER])


def _owner_count(team_id: int) -> int:
    return Membership.objects.filter(team_id=team_id, role=Role.OWNER).count()


@transaction.atomic
def membership_change_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    """Change a member's role. Owner changes need an owner; the last owner stays."""
    membership_require(actor=actor, action="team.manage_members")
    if membership.team_id != actor.team_id:
        raise PermissionDenied("That member belongs to another team.")
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if Role.OWNER in (role, membership.role):
        membership_require(actor=actor, action="team.manage_owners")
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.team_id) <= 1:
        raise ValidationError("A team needs at least one owner: make someone else owner first.")
    membership.role = role
    membership.save(update_fields=["role"])
    _invites_revoke_beyond(membership=membership)
    access_revoke(user_id=membership.user_id, reason="role changed")
    return membership


@transaction.atomic
def membership_remove(*, actor: Membership, membership: Membership) -> None:
    """Remove a member (admins and owners) or leave (anyone). The last owner cannot go."""
    if membership.team_id != actor.team_id:
        raise PermissionDenied("That member belongs to another team.")
    leaving = membership.pk == actor.pk
    if not leaving:
        membership_require(actor=actor, action="team.manage_members")
        if membership.role == Role.OWNER:
            membership_require(actor=actor, action="team.manage_owners")
    if membership.role == Role.OWNER and _owner_count(membership.team_id) <= 1:
        raise ValidationError("The last owner cannot leave: make someone else owner first.")
    _membership_end(membership=membership)


def _membership_end(*, membership: Membership) -> None:
    """The one way a membership ends (a removal, leaving, or the single sign-on map): open invites
    it made are revoked, open sockets close, and API keys stop at their next request."""
    membership.delete()
    _invites_revoke_by(team_id=membership.team_id, user_id=membership.user_id)
    access_revoke(user_id=membership.user_id, reason="removed from the team")


def project_create(*, actor: Membership, name: str, description: str = "") -> Project:
    """A new project in ``actor``'s team. Viewers cannot create projects."""
    membership_require(actor=actor, action="project.create")
    bounds.check_lengths(
        name=(name.strip(), bounds.PROJECT_NAME), description=(description.strip(), bounds.PROJECT_DESCRIPTION)
    )
    try:
        with transaction.atomic():
            return Project.objects.create(
                team=actor.team, name=name.strip(), description=description.strip(), created_by=actor.user
            )
    except IntegrityError:
        raise ValidationError({"name": "This team already has a project with that name."}) from None


def project_update(*, project: Project, actor: Membership, name: str, description: str) -> Project:
    membership_require(actor=actor, action="project.update", project=project)
    bounds.check_lengths(
        name=(name.strip(), bounds.PROJECT_NAME), description=(description.strip(), bounds.PROJECT_DESCRIPTION)
    )
    project.name = name.strip()
    project.description = description.strip()
    try:
        with transaction.atomic():
            project.save(update_fields=["name", "description"])
    except IntegrityError:
        raise ValidationError({"name": "This team already has a project with that name."}) from None
    return project


def project_delete(*, project: Project, actor: Membership) -> None:
    membership_require(actor=actor, action="project.delete", project=project)
    project.delete()


def team_two_factor_set(*, actor: Membership, required: bool) -> Team:
    """Require (or stop requiring) two-factor of ``actor``'s team. An owner turns it on only with
    two-factor of their own, so the requirement never locks out the person who set it."""
    from webapp.accounts.selectors import user_has_two_factor

    membership_require(actor=actor, action="team.require_two_factor")
    if required and not user_has_two_factor(user=actor.user):
        raise ValidationError("Turn on two-factor for your own account first.")
    team = actor.team
    team.require_two_factor = required
    team.save(update_fields=["require_two_factor"])
    if required:  # the members' open sockets re-check at once: those without two-factor close
        for user_id in team.memberships.values_list("user_id", flat=True):
            access_revoke(user_id=user_id, reason="team requires two-factor")
    return team


@transaction.atomic
def memberships_sync_from_groups(*, user: Any, groups: list[str]) -> None:
    """Apply ATELIER_OIDC_ROLE_MAP to ``user``'s identity-provider ``groups`` at a login.

    A mapped team the user is not in is joined with the mapped role (the highest when several groups
    map to one team); a membership the map granted follows the role and ends, as a manual removal does,
    when no group maps to its team any more. A membership made by hand (invite, an admin) is left as it
    is. A team named in the map that does not exist is skipped; so is the team's last owner."""
    wanted: dict[int, str] = {}
    for group in groups:
        if group not in settings.ATELIER_OIDC_ROLE_MAP:
            continue
        team_name, role = settings.ATELIER_OIDC_ROLE_MAP[group]
        teams = list(Team.objects.filter(name=team_name)[:2])
        if len(teams) != 1:
            continue
        current = wanted.get(teams[0].pk)
        if current is None or ROLE_RANK[Role(role)] > ROLE_RANK[Role(current)]:
            wanted[teams[0].pk] = role
    for membership in Membership.objects.select_for_update().filter(user=user):
        granted = wanted.pop(membership.team_id, "")
        if not membership.granted_by_sso:
            continue
        last_owner = membership.role == Role.OWNER and _owner_count(membership.team_id) <= 1
        if not granted and not last_owner:
            _membership_end(membership=membership)
        elif granted and granted != membership.role and not (last_owner and granted != Role.OWNER):
            membership.role = granted
            membership.save(update_fields=["role"])
            _invites_revoke_beyond(membership=membership)
            access_revoke(user_id=membership.user_id, reason="role changed")
    for team_id, role in wanted.items():
        Membership.objects.create(team_id=team_id, user=user, role=role, granted_by_sso=True)

"""Reads: keys of a project, and who a bearer key stands for right now."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from webapp.api.errors import unauthorized
from webapp.api.models import ApiKey, secret_hash
from webapp.workspaces.models import Membership, Project
from webapp.workspaces.permissions import membership_may
from webapp.workspaces.selectors import project_get_for_member


@dataclass(frozen=True)
class Principal:
    """A key that works at this moment, its project and its user's membership."""

    key: ApiKey
    project: Project
    membership: Membership

    @property
    def user(self) -> Any:
        return self.membership.user


def key_authenticate(*, authorization: str) -> Principal:
    """The principal behind an ``Authorization: Bearer <key>`` header, checked now, never cached.

    Raises a 401 ``ApiError`` for a missing, unknown, revoked or expired key,
    and for a key whose user has left the project's team or was deactivated.
    """
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise unauthorized("Missing API key: send 'Authorization: Bearer <key>'. Keys are made on a project's API page.")
    key = ApiKey.objects.select_related("project", "project__team", "user").filter(secret_hash=secret_hash(secret)).first()
    if key is None:
        raise unauthorized("Incorrect API key.")
    if key.is_revoked:
        raise unauthorized("This API key was revoked.")
    if key.is_expired:
        raise unauthorized("This API key has expired.")
    if not key.user.is_active:
        raise unauthorized("This API key's user account is disabled.")
    membership = Membership.objects.filter(team_id=key.project.team_id, user_id=key.user_id).select_related("user").first()
    if membership is None:
        raise unauthorized("This API key's user is no longer a member of the project's team.")
    return Principal(key=key, project=key.project, membership=membership)


def principal_may_still_generate(*, principal: Principal) -> bool:
    """Whether ``principal``'s key may still generate now (a stream re-checks this as it runs):
    the key neither revoked nor expired, its user active, still in the team, with a role that generates."""
    key = ApiKey.objects.select_related("user").filter(pk=principal.key.pk).first()
    if key is None or not key.is_active or not key.user.is_active:
        return False
    membership = Membership.objects.filter(team_id=principal.project.team_id, user_id=key.user_id).first()
    return membership_may(actor=membership, action="api.generate")


def key_list_for_member(*, project: Project) -> QuerySet[ApiKey]:
    """The keys the viewing member sees: their own, or every key of the project for those who may revoke any."""
    keys = ApiKey.objects.filter(project=project).select_related("user")
    if not membership_may(actor=project.membership, action="keys.revoke"):  # "own" for this role: theirs only
        keys = keys.filter(user_id=project.membership.user_id)
    return keys.order_by("-created_at", "-id")


def key_get_for_member(*, user: Any, project_id: int, key_id: int) -> ApiKey:
    """A key of a project the user belongs to; 404 for outsiders and for others' keys unless admin."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        key = key_list_for_member(project=project).get(pk=key_id)
    except (ApiKey.DoesNotExist, ValueError, TypeError):
        raise Http404("No such key") from None
    key.project = project
    return key


def asset_get_for_key(*, key: ApiKey, asset_id: int) -> Any:
    """An image a job of this key made, or ``None``: other keys, even of the same user, see nothing."""
    from webapp.studio.models import Asset

    return Asset.objects.filter(pk=asset_id, job__api_call__key=key, project_id=key.project_id).first()

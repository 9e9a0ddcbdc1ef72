"""Writes: API keys (create, revoke, usage counters)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from webapp.api.models import ApiKey, secret_hash
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_require

SECRET_PREFIX = "atl_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = 12  # "atl_" and 8 characters of the secret


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once; never stored


def key_create(*, actor: Membership, project: Any, name: str, expires_at: datetime | None = None) -> NewKey:
    """A new key for ``actor``'s user in ``project``; the secret is in the result and nowhere else.

    ``keys.create``: any member may make keys, viewers included (theirs can only list
    models), and each holds at most ``MAX_KEYS_PER_MEMBER`` live keys (neither
    revoked nor expired) across the team's projects, whatever their role: more
    keys would multiply the per-key limits. Raises PermissionDenied when
    ``project`` is not ``actor``'s team's, ValidationError for an empty name,
    an expiry in the past, or one key too many.
    """
    membership_require(actor=actor, action="keys.create", project=project)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A key needs a name."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        _key_cap_check(actor=actor)
        key = ApiKey.objects.create(
            project=project, user=actor.user, name=name[:100], prefix=secret[:PREFIX_LENGTH],
            secret_hash=secret_hash(secret), expires_at=expires_at,
        )
    return NewKey(key=key, secret=secret)


def _key_cap_check(*, actor: Membership) -> None:
    limit = int(settings.MAX_KEYS_PER_MEMBER)
    if limit <= 0:
        return
    # The user's row is locked first (PostgreSQL), so two racing requests cannot both pass.
    list(type(actor.user)._default_manager.select_for_update().filter(pk=actor.user_id).values_list("pk", flat=True))
    live = (
        ApiKey.objects.filter(project__team_id=actor.team_id, user_id=actor.user_id, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .count()
    )
    if live >= limit:
        raise ValidationError(
            f"You already have {live} working keys in this team; the limit is {limit}. Revoke one first.",
            code="quota",
        )


def key_revoke(*, actor: Membership, key: ApiKey) -> ApiKey:
    """Revoke a key: its owner, or a team admin or owner, may (``keys.revoke``). It stops working at once."""
    membership_require(actor=actor, action="keys.revoke", project=key.project, owner_id=key.user_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def keys_revoke_for_member(*, team_id: int, user_id: int) -> int:
    """Revoke every live key of ``user_id`` in the team's projects (the member left, was removed, or
    became a viewer); returns how many. A revoked key stays revoked: re-joining needs new keys."""
    return ApiKey.objects.filter(project__team_id=team_id, user_id=user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def keys_revoke_for_user(*, user_id: int) -> int:
    """Revoke every live key of ``user_id`` in every team (the account was deactivated); returns how many."""
    return ApiKey.objects.filter(user_id=user_id, revoked_at__isnull=True).update(revoked_at=timezone.now())


def key_record_request(*, key_id: int) -> None:
    ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now(), request_count=F("request_count") + 1)


def key_record_tokens(*, key_id: int | None, tokens: int) -> None:
    if key_id and tokens:
        ApiKey.objects.filter(pk=key_id).update(token_count=F("token_count") + tokens)


def key_record_images(*, key_id: int, images: int) -> None:
    if images:
        ApiKey.objects.filter(pk=key_id).update(image_count=F("image_count") + images)

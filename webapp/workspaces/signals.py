"""workspaces listens to accounts (accounts never imports workspaces)."""
from __future__ import annotations

from typing import Any

from allauth.account.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from webapp.accounts.oidc import oidc_groups
from webapp.accounts.signals import user_deactivated
from webapp.workspaces.models import Invite
from webapp.workspaces.services import memberships_sync_from_groups


@receiver(user_deactivated, dispatch_uid="workspaces_invites_revoke_on_deactivation")
def _user_deactivated(sender: Any, user: Any, **kwargs: Any) -> None:
    """An invite is a delegation of its creator's power: a deactivated account's open links die with it
    (and stay dead if the account is reactivated, like its API keys)."""
    Invite.objects.filter(created_by_id=user.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@receiver(user_logged_in, dispatch_uid="workspaces_memberships_sync_on_sso_login")
def _user_logged_in(sender: Any, request: Any, user: Any, sociallogin: Any = None, **kwargs: Any) -> None:
    """A single sign-on login brings the memberships ATELIER_OIDC_ROLE_MAP grants up to date."""
    if sociallogin is not None:
        memberships_sync_from_groups(user=user, groups=oidc_groups(sociallogin.account.extra_data))

"""workspaces listens to accounts (accounts never imports workspaces)."""
from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from webapp.accounts.signals import user_deactivated
from webapp.workspaces.models import Invite


@receiver(user_deactivated, dispatch_uid="workspaces_invites_revoke_on_deactivation")
def _user_deactivated(sender: Any, user: Any, **kwargs: Any) -> None:
    """An invite is a delegation of its creator's power: a deactivated account's open links die with it
    (and stay dead if the account is reactivated, like its API keys)."""
    Invite.objects.filter(created_by_id=user.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )

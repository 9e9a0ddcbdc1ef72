"""The API listens to memberships (workspaces never imports the API): keys die with the access
that made them. Leaving or being removed from a team, or dropping below the role that generates,
revokes the user's keys in that team's projects; re-joining does not bring them back."""
from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from webapp.accounts.signals import user_deactivated
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_may


@receiver(pre_save, sender=Membership, dispatch_uid="api_membership_role_before")
def _role_before(sender: Any, instance: Membership, **kwargs: Any) -> None:
    if instance.pk and not kwargs.get("raw"):
        instance._api_role_before = (  # type: ignore[attr-defined]
            Membership.objects.filter(pk=instance.pk).values_list("role", flat=True).first()
        )


@receiver(post_save, sender=Membership, dispatch_uid="api_keys_revoke_on_role_drop")
def _role_changed(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_api_role_before", None)
    if created or kwargs.get("raw") or before is None:
        return
    if membership_may(actor=Membership(team_id=instance.team_id, role=before), action="api.generate") and not (
        membership_may(actor=instance, action="api.generate")
    ):
        from webapp.api.services import keys_revoke_for_member

        keys_revoke_for_member(team_id=instance.team_id, user_id=instance.user_id)


@receiver(post_delete, sender=Membership, dispatch_uid="api_keys_revoke_on_removal")
def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    from webapp.api.services import keys_revoke_for_member

    keys_revoke_for_member(team_id=instance.team_id, user_id=instance.user_id)


@receiver(user_deactivated, dispatch_uid="api_keys_revoke_on_deactivation")
def _user_deactivated(sender: Any, user: Any, **kwargs: Any) -> None:
    """A deactivated account's keys are revoked in every team; reactivating does not revive them."""
    from webapp.api.services import keys_revoke_for_user

    keys_revoke_for_user(user_id=user.pk)

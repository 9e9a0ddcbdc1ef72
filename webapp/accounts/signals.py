"""Logging out or changing the password ends the user's live connections too (not only their sessions);
a login lockout is told to the account's owner."""
from __future__ import annotations

import logging
from typing import Any

from allauth.mfa.signals import authenticator_removed
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.core.cache import cache
from django.core.mail import send_mail
from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver

from webapp.core.access import access_revoke

User = get_user_model()
logger = logging.getLogger(__name__)

# Sent (with ``user``) inside the transaction that deactivates an account (services.user_deactivate):
# apps above accounts end what the account held (the api app revokes its keys).
user_deactivated = Signal()


@receiver(authenticator_removed, dispatch_uid="accounts_access_revoke_on_authenticator_removed")
def _authenticator_removed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A team may require two-factor: the user's sockets re-check now that they may have none."""
    access_revoke(user_id=user.pk, reason="two-factor removed")


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        access_revoke(user_id=user.pk, reason="logged out")


@receiver(pre_save, sender=User)
def _note_password_change(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        instance._atelier_password_changed = False
        return
    old = User.objects.filter(pk=instance.pk).values_list("password", "is_active").first()
    instance._atelier_password_changed = old is not None and (old[0] != instance.password or old[1] != instance.is_active)


@receiver(post_save, sender=User)
def _password_changed(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if getattr(instance, "_atelier_password_changed", False):
        instance._atelier_password_changed = False
        access_revoke(user_id=instance.pk, reason="password changed")


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any, username: str | None = None, ip_address: str | None = None,
                **kwargs: Any) -> None:
    """Mail the account (once per address and cool-off) that logins to it from ``ip_address`` are locked.

    Locking is by address and by (account, address), so this is a notice, not an outage:
    the owner logs in from anywhere else as usual.
    """
    user = User.objects.filter(username=username).first() if username else None
    if user is None:
        return
    key = f"atelier:lockout-notice:{user.pk}:{ip_address}"
    if not cache.add(key, 1, timeout=int(settings.AXES_COOLOFF_TIME.total_seconds())):
        return
    logger.warning("Login lockout for account %s from %s", user.pk, ip_address)
    if user.email:
        send_mail(
            "Atelier: failed logins to your account",
            f"Someone at {ip_address} failed to log in to your Atelier account {username!r} "
            f"{settings.AXES_FAILURE_LIMIT} times. Logins to it from that address are paused for "
            f"{int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)} minutes; elsewhere you log in as usual. "
            "If this was not you, consider changing your password.",
            None, [user.email], fail_silently=True,
        )

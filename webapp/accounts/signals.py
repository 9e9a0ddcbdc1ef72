"""Logging out or changing the password ends the user's live connections too (not only their sessions)."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from webapp.core.access import access_revoke

User = get_user_model()


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

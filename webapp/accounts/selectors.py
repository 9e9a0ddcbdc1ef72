from __future__ import annotations

from typing import Any


def user_has_two_factor(*, user: Any) -> bool:
    """Whether ``user`` has a second factor: an authenticator app or a security key (recovery codes
    alone are no second factor: they come with one)."""
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(
        user_id=user.pk, type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
    ).exists()

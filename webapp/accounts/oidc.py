"""allauth's openid_connect provider, plus the ``nonce`` it neither sends nor checks.

allauth checks an ID token's issuer, audience and expiry (its jwtkit). The nonce binds the token to the
login this browser started: it is sent with the authorization request, kept in the login's stashed
state, and compared with the token's claim in ``SocialAccountAdapter.pre_social_login``."""
from __future__ import annotations

import hmac
import secrets
from typing import Any

from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.http import HttpRequest, HttpResponse

NONCE_STATE_KEY = "oidc_nonce"


class NonceOpenIDConnectProvider(OpenIDConnectProvider):
    # allauth finds a provider's URLs (and templates) by its package: still openid_connect's.
    package = "allauth.socialaccount.providers.openid_connect"

    def redirect(self, request: HttpRequest, process: Any, next_url: str | None = None,
                 data: Any = None, **kwargs: Any) -> HttpResponse:
        nonce = secrets.token_urlsafe(24)
        auth_params = kwargs.pop("auth_params", None) or self.get_auth_params()
        auth_params["nonce"] = nonce
        kwargs[NONCE_STATE_KEY] = nonce
        return super().redirect(request, process, next_url, data, auth_params=auth_params, **kwargs)


def oidc_nonce_matches(*, state: dict[str, Any], claims: dict[str, Any]) -> bool:
    """Whether the ID token's ``nonce`` is the one this login sent."""
    sent, got = state.get(NONCE_STATE_KEY), claims.get("nonce")
    return isinstance(sent, str) and isinstance(got, str) and hmac.compare_digest(sent, got)


def oidc_claims(extra_data: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims of a login (allauth keeps them under ``id_token``)."""
    claims = extra_data.get("id_token")
    return claims if isinstance(claims, dict) else {}


def oidc_groups(extra_data: dict[str, Any]) -> list[str]:
    """The ``groups`` claim, from userinfo or else the ID token; anything but a list of text reads as none."""
    for source in (extra_data.get("userinfo"), extra_data.get("id_token")):
        if isinstance(source, dict) and "groups" in source:
            groups = source["groups"]
            return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    return []

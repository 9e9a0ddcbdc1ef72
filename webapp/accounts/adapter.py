"""Atelier's rules inside allauth's flows: who may sign up (ATELIER_SIGNUP, invites, the first account),
and how an OIDC login may join an account."""
from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from webapp.accounts.oidc import oidc_claims, oidc_nonce_matches
from webapp.accounts.services import signup_is_open, sso_signup_finish


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_is_open(request=request)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """OIDC logins: new accounts follow ATELIER_SIGNUP; an account is joined only by an address that is
    verified on both sides; the ID token's nonce must be this login's."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # The site's first account (its admin) is made with the setup token, never by single sign-on.
        return get_user_model().objects.exists() and signup_is_open(request=request)

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> Any:
        with transaction.atomic():
            user = super().save_user(request, sociallogin, form)
            sso_signup_finish(request=request, user=user)
        return user

    def can_authenticate_by_email(self, login: SocialLogin, email: str) -> bool:
        return EmailAddress.objects.filter(email__iexact=email, verified=True).exists()

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        # Every social provider here is OIDC (settings.SOCIALACCOUNT_PROVIDERS): a login without a nonce fails.
        if not oidc_nonce_matches(state=sociallogin.state, claims=oidc_claims(sociallogin.account.extra_data)):
            raise ImmediateHttpResponse(render_authentication_error(
                request, sociallogin.account.get_provider(), exception=OAuth2Error("The sign-in's nonce does not match.")))

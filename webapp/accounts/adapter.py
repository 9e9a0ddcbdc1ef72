"""Atelier's rules inside allauth's flows: who may sign up (ATELIER_SIGNUP, invites, the first account)."""
from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from webapp.accounts.services import signup_is_open


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_is_open(request=request)

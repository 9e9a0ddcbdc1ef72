"""A team that requires two-factor: its members without it are sent to set it up first."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from webapp.accounts.selectors import user_has_two_factor
from webapp.workspaces.selectors import team_requiring_two_factor

# Leaving a team needs no second factor.
EXEMPT_VIEWS = {"workspaces:member_remove"}


class TwoFactorRequiredMiddleware:
    """Every page under a team or a project (a ``team_id`` or ``project_id`` in its URL) checks the
    team's requirement; API keys (no session) are not asked: they are a second secret already."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any,
                     view_kwargs: dict[str, Any]) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not {"team_id", "project_id"} & view_kwargs.keys():
            return None
        match = request.resolver_match
        if match is not None and match.view_name in EXEMPT_VIEWS:
            return None
        team = team_requiring_two_factor(user=user, team_id=view_kwargs.get("team_id"),
                                         project_id=view_kwargs.get("project_id"))
        if team is None or user_has_two_factor(user=user):
            return None
        messages.warning(request, f"{team.name} requires two-factor: set it up to reach its projects.")
        return HttpResponseRedirect(f"{reverse('mfa_index')}?{urlencode({'next': request.get_full_path()})}")

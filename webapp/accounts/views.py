from __future__ import annotations

from typing import Any

from allauth.account import views as allauth_views
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.template.response import TemplateResponse

from webapp.accounts.forms import SignupForm
from webapp.accounts.services import (
    SIGNUP_INVITE_SESSION_KEY,
    setup_token_needed,
    signup_invite_usable,
)

__all__ = ["SIGNUP_INVITE_SESSION_KEY", "SignupView", "signup"]


class SignupView(allauth_views.SignupView):
    """allauth's signup, with the first-run setup token and invite-only signup (``SignupForm.save``)."""

    form_class = SignupForm

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        invite_id = self.request.session.get(SIGNUP_INVITE_SESSION_KEY)
        kwargs["setup_needed"] = setup_token_needed(self.request)
        kwargs["invite_id"] = invite_id if signup_invite_usable(invite_id) else None
        return kwargs

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        initial["setup_token"] = self.request.GET.get("setup", "")[:100]
        return initial

    def form_valid(self, form: SignupForm) -> HttpResponse:
        try:
            response = super().form_valid(form)
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        self.request.session.pop(SIGNUP_INVITE_SESSION_KEY, None)
        return response

    def closed(self) -> HttpResponse:
        return TemplateResponse(self.request, self.template_name_signup_closed, {"mode": settings.ATELIER_SIGNUP})


signup = SignupView.as_view()

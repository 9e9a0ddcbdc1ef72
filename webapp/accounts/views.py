from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from webapp.accounts.forms import SignupForm
from webapp.accounts.models import User
from webapp.accounts.services import setup_token_needed, signup_invite_usable, user_signup

# Set by the invite page when an anonymous visitor opens a usable invite link: the invite's id.
# Signup checks that invite again and spends it; the id alone is no pass.
SIGNUP_INVITE_SESSION_KEY = "atelier_signup_invite"


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("workspaces:dashboard")
    setup_needed = setup_token_needed(request)
    invite_id = request.session.get(SIGNUP_INVITE_SESSION_KEY)
    invited = signup_invite_usable(invite_id)
    closed = settings.ATELIER_SIGNUP == "invite" and not invited and User.objects.exists()
    initial = {"setup_token": request.GET.get("setup", "")[:100]} if setup_needed else None
    form = SignupForm(request.POST or None, initial=initial, setup_needed=setup_needed)
    if request.method == "POST" and not closed and form.is_valid():
        try:
            user = user_signup(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                setup=form.cleaned_data.get("setup_token", ""),
                invite_id=invite_id if invited else None,
                request=request,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            request.session.pop(SIGNUP_INVITE_SESSION_KEY, None)
            next_url = request.GET.get("next", "")
            if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                return redirect(next_url)
            return redirect("workspaces:dashboard")
    return render(request, "accounts/signup.html", {"form": form, "closed": closed})

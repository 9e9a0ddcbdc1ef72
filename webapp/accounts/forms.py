from __future__ import annotations

from typing import Any

from allauth.account import forms as allauth_forms
from allauth.account.models import EmailAddress
from allauth.account.utils import setup_user_email
from django import forms
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest

from webapp.accounts.models import User
from webapp.accounts.services import PASSWORD_MAX, user_signup


class LoginForm(allauth_forms.LoginForm):
    """allauth's login form (its field is ``login``: a username or an e-mail address).

    A post that names the field ``username``, as Atelier's login form did before allauth,
    still works: scripts and benches that log in keep working.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        data = kwargs.get("data")
        if data is not None and "login" not in data and "username" in data:
            data = data.copy()
            data["login"] = data["username"]
            kwargs["data"] = data
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or e-mail"
        self.fields["login"].widget.attrs.update(placeholder="", autocomplete="username")


class SignupForm(allauth_forms.SignupForm):
    """allauth's signup form, saved by ``user_signup`` (setup token, ATELIER_SIGNUP, invites, first admin)."""

    def __init__(self, *args: Any, setup_needed: bool = False, invite_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invite_id = invite_id
        if "email" in self.fields:
            self.fields["email"].help_text = "Optional: lets you reset a forgotten password."
        self.fields["password2"].label = "Password confirmation"
        for name in ("password1", "password2"):
            field = self.fields[name]
            assert isinstance(field, forms.CharField)
            field.max_length = PASSWORD_MAX
            field.validators.append(MaxLengthValidator(PASSWORD_MAX))
            field.widget.attrs["maxlength"] = str(PASSWORD_MAX)
        if setup_needed:
            self.fields["setup_token"] = forms.CharField(
                label="Setup token", max_length=100,
                help_text="This is the site's first account: paste the setup token that `make run` printed.",
            )

    def save(self, request: HttpRequest) -> User:
        """Raises ``ValidationError`` when ``user_signup`` refuses (the view shows it on the form)."""
        email = self.cleaned_data.get("email") or ""
        user = user_signup(
            username=self.cleaned_data["username"],
            email=email,
            password=self.cleaned_data["password1"],
            setup=self.cleaned_data.get("setup_token", ""),
            invite_id=self.invite_id,
            request=request,
        )
        setup_user_email(request, user, [EmailAddress(email=email)] if email else [])
        return user

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import MaxLengthValidator

from webapp.accounts.models import User
from webapp.accounts.services import PASSWORD_MAX


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, max_length=254, help_text="Optional: for your teammates to recognise you.")

    class Meta:
        model = User
        fields = ("username", "email")

    def __init__(self, *args, setup_needed: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
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

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from webapp.accounts.models import User


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Optional: for your teammates to recognise you.")

    class Meta:
        model = User
        fields = ("username", "email")

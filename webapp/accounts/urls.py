"""Atelier's names for allauth's account pages (``accounts:login``...). webapp/urls.py mounts
allauth's own URLconf (reset, e-mail, confirmation...) under the same prefix, after these."""
from __future__ import annotations

from allauth.account import views as allauth_views
from django.urls import path

from webapp.accounts import views

app_name = "accounts"
urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("password/change/", allauth_views.password_change, name="password_change"),
]

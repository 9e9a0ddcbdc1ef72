from __future__ import annotations

from django.db import transaction

from webapp.accounts.models import User


@transaction.atomic
def user_signup(*, username: str, email: str, password: str) -> User:
    """Create an account; the very first account on a site becomes its admin.

    The existence check and the insert run in one transaction (SQLite's
    IMMEDIATE mode and PostgreSQL's row insert both serialize them well enough
    for a one-off bootstrap).
    """
    first = not User.objects.exists()
    user = User.objects.create_user(username=username, email=email, password=password)
    if first:
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    return user

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.crypto import constant_time_compare

from webapp.accounts.models import User

USERNAME_MAX = 150
EMAIL_MAX = 254
PASSWORD_MAX = 4096  # argon2 hashes anything, but a megabyte password is a CPU attack


def setup_token_path() -> Path:
    return Path(settings.VAR_DIR) / "setup_token"


def setup_token() -> str:
    """The one-time first-run token, generated once into var/ (readable by its owner only)."""
    path = setup_token_path()
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def setup_token_needed() -> bool:
    """Whether the next signup is the first one and must carry the setup token."""
    return bool(settings.ATELIER_SETUP_TOKEN_REQUIRED) and not User.objects.exists()


def _check_bounds(*, username: str, email: str, password: str) -> None:
    errors = {}
    if len(username) > USERNAME_MAX:
        errors["username"] = f"At most {USERNAME_MAX} characters."
    if len(email) > EMAIL_MAX:
        errors["email"] = f"At most {EMAIL_MAX} characters."
    if len(password) > PASSWORD_MAX:
        errors["password1"] = f"At most {PASSWORD_MAX} characters."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def user_signup(*, username: str, email: str, password: str, setup: str = "", invited: bool = False) -> User:
    """Create an account; the very first account on a site becomes its admin.

    The first account needs the setup token (``setup``) when the site listens
    on a network address, and later ones need an invite (``invited``) when
    signup is invite-only. Raises ``ValidationError`` otherwise.

    The existence check and the insert run in one transaction (SQLite's
    IMMEDIATE mode and PostgreSQL's row insert both serialize them well enough
    for a one-off bootstrap).
    """
    _check_bounds(username=username, email=email, password=password)
    first = not User.objects.exists()
    token_ok = first and bool(setup) and constant_time_compare(setup, setup_token())
    if first and settings.ATELIER_SETUP_TOKEN_REQUIRED and not token_ok:
        raise ValidationError({"setup_token": "The first account needs the setup token that `make run` printed."})
    if not first and settings.ATELIER_SIGNUP == "invite" and not invited:
        raise ValidationError("Signup on this site is by invitation only: open your invite link first.")
    user = User.objects.create_user(username=username, email=email, password=password)
    if first:
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        transaction.on_commit(lambda: setup_token_path().unlink(missing_ok=True))
    return user

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from webapp.accounts.models import User
from webapp.core.access import access_revoke

USERNAME_MAX = 150
EMAIL_MAX = 254
PASSWORD_MAX = 4096  # argon2 hashes anything, but a megabyte password is a CPU attack
# Set by the invite page when an anonymous visitor opens a usable invite link: the invite's id.
# Signup checks that invite again and spends it; the id alone is no pass.
SIGNUP_INVITE_SESSION_KEY = "atelier_signup_invite"


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


# Headers that say a proxy stands between the client and us: then the client is not local.
_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_HOST")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # name:port
        host = host.split(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_is_local(request: Any) -> bool:
    """Whether ``request`` provably came from this machine to this machine, whatever started the server.

    It must have arrived on a loopback socket (the ASGI server's own address, not
    the address it was told to bind), from a loopback client, addressed to a
    loopback host, with no forwarding header. A server bound to ``0.0.0.0`` answers
    a request from elsewhere on a network address, so that request is not local.
    """
    if request is None:
        return False
    scope = getattr(request, "scope", None) or {}
    server = scope.get("server") or (request.META.get("SERVER_NAME"), None)
    meta = request.META
    return (
        _is_loopback(server[0] if server else None)
        and _is_loopback(meta.get("REMOTE_ADDR"))
        and _is_loopback(meta.get("HTTP_HOST") or meta.get("SERVER_NAME"))
        and not any(meta.get(name) for name in _FORWARDING_HEADERS)
    )


def setup_token_required(request: Any = None) -> bool:
    """Whether the site's first account needs the setup token (ATELIER_SETUP_TOKEN_REQUIRED).

    1 or 0 decide; unset, the token is required unless ATELIER_HOST is loopback and
    ``request`` is local (``request_is_local``). Without a request it is required.
    """
    mode = settings.ATELIER_SETUP_TOKEN_REQUIRED
    if mode is not None:
        return bool(mode)
    return not (settings.ATELIER_IS_LOOPBACK and request_is_local(request))


def setup_token_needed(request: Any = None) -> bool:
    """Whether the next signup is the first one and must carry the setup token."""
    return setup_token_required(request) and not User.objects.exists()


class SignupInvites(Protocol):
    """How invite-only signup checks and spends an invite. workspaces registers it
    (``signup_invites_register`` in its AppConfig.ready): accounts sits below it."""

    def usable(self, invite_id: int) -> bool: ...

    def redeem(self, invite_id: int, user: User) -> None:
        """Spend the invite on ``user`` (join its team), or raise ValidationError."""


_signup_invites: SignupInvites | None = None


def signup_invites_register(handler: SignupInvites) -> None:
    global _signup_invites
    _signup_invites = handler


def signup_invite_usable(invite_id: Any) -> bool:
    """Whether the invite a visitor opened (its id, from their session) still lets them sign up."""
    return isinstance(invite_id, int) and _signup_invites is not None and _signup_invites.usable(invite_id)


def signup_is_open(*, request: Any) -> bool:
    """Whether the signup form opens for ``request``: always for the site's first account (the setup
    token guards it), then by ATELIER_SIGNUP: ``open``; ``invite`` with a usable invite opened in
    this session; ``closed`` never."""
    if not User.objects.exists() or settings.ATELIER_SIGNUP == "open":
        return True
    if settings.ATELIER_SIGNUP == "invite":
        # Set by the invite page (workspaces) when an anonymous visitor opens a usable invite link.
        return signup_invite_usable(request.session.get(SIGNUP_INVITE_SESSION_KEY))
    return False


def sso_signup_finish(*, request: Any, user: Any) -> None:
    """A new account made by single sign-on: with invite-only sign-up, the invite this session opened is
    spent on it (it joins the invite's team), as a sign-up by form spends it. Raises PermissionDenied when
    the invite is no longer usable (the caller's transaction then drops the account)."""
    if settings.ATELIER_SIGNUP != "invite":
        return
    invite_id = request.session.pop(SIGNUP_INVITE_SESSION_KEY, None)
    if not signup_invite_usable(invite_id):
        raise PermissionDenied("Signup on this site is by invitation only: open your invite link first.")
    assert _signup_invites is not None and invite_id is not None  # signup_invite_usable said so
    _signup_invites.redeem(invite_id, user)


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
def user_signup(
    *, username: str, email: str, password: str, setup: str = "", invite_id: int | None = None, request: Any = None
) -> User:
    """Create an account; the very first account on a site becomes its admin.

    The first account needs the setup token (``setup``) unless ``request`` is
    local (``setup_token_required``). When signup is invite-only, later ones
    need a usable invite (``invite_id``): it is checked again here and spent on
    the new account, which joins the invite's team in the same transaction (an
    invite opened once is not a pass for ever). Raises ``ValidationError`` otherwise.

    The existence check and the insert run in one transaction (SQLite's
    IMMEDIATE mode and PostgreSQL's row insert both serialize them well enough
    for a one-off bootstrap).
    """
    _check_bounds(username=username, email=email, password=password)
    first = not User.objects.exists()
    token_ok = first and bool(setup) and constant_time_compare(setup, setup_token())
    if first and setup_token_required(request) and not token_ok:
        raise ValidationError({"setup_token": "The first account needs the setup token that `make run` printed."})
    if not first and settings.ATELIER_SIGNUP == "closed":
        raise ValidationError("Signup on this site is closed: ask a site admin for an account.")
    by_invite = not first and settings.ATELIER_SIGNUP == "invite"
    if by_invite and not signup_invite_usable(invite_id):
        raise ValidationError("Signup on this site is by invitation only: open your invite link first.")
    user = User.objects.create_user(username=username, email=email, password=password)
    if by_invite:
        assert _signup_invites is not None and invite_id is not None  # signup_invite_usable said so
        _signup_invites.redeem(invite_id, user)
    if first:
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        transaction.on_commit(lambda: setup_token_path().unlink(missing_ok=True))
    return user


# --- Offboarding (issue 20) -----------------------------------------------------------


def _require_site_admin(actor: Any) -> None:
    if not (actor.is_active and actor.is_staff and actor.has_perm("accounts.change_user")):
        raise PermissionDenied("Only a site admin may deactivate or reactivate accounts.")


def sessions_end(*, user: User) -> int:
    """Delete every session logged in as ``user`` (database sessions, Django's default); returns how many."""
    from django.contrib.sessions.models import Session

    mine = [session.pk for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
            if session.get_decoded().get("_auth_user_id") == str(user.pk)]
    Session.objects.filter(pk__in=mine).delete()
    return len(mine)


def _queued_jobs_cancel(*, user: User) -> int:
    """Stop ``user``'s queued jobs of every kind that names its owner (chat replies, API text jobs,
    image jobs), through the lifecycle; running jobs finish."""
    from webapp.core.jobs import JobStatus, job_kinds, job_stop

    stopped = 0
    for kind in job_kinds():
        column = kind.owner or kind.fair_by
        if not column:
            continue
        for job in kind.rows().filter(**{column: user.pk, "status": JobStatus.QUEUED}):
            stopped += job_stop(kind=kind, job=job, reason="The account was deactivated.") == JobStatus.STOPPED
    return stopped


def user_deactivate(*, actor: Any, user: User) -> User:
    """Deactivate ``user`` at once: no login (allauth refuses inactive accounts), their sessions end,
    their open sockets close (``access.revoked``, after commit),
    their API keys are revoked (``user_deactivated``: the api app listens) and their queued jobs stop.
    What they made (assets, reviews, templates, audit entries) stays, attributed to them.
    Only a site admin (staff allowed to change users) may; nobody deactivates themselves.
    """
    from webapp.accounts.signals import user_deactivated

    _require_site_admin(actor)
    if user.pk == actor.pk:
        raise ValidationError("You cannot deactivate your own account.")
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        user_deactivated.send(sender=User, user=user)
        transaction.on_commit(lambda: access_revoke(user_id=user.pk, reason="account deactivated"))
    sessions_end(user=user)
    _queued_jobs_cancel(user=user)
    return user


def user_reactivate(*, actor: Any, user: User) -> User:
    """Let ``user`` log in again. Keys revoked at deactivation stay revoked: they make new ones."""
    _require_site_admin(actor)
    user.is_active = True
    user.save(update_fields=["is_active"])
    return user

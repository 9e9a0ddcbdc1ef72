"""Access that follows membership at every moment, for connections that outlive a request.

A websocket is authorized when it opens, but membership, role, session and
password can change while it stays open. Two mechanisms keep it honest:

- **The fast path**: every consumer joins the per-user group ``user_<id>``.
  Services that take access away (member removed, role changed, logout,
  password changed) call ``access_revoke`` and, after the transaction commits,
  an ``access.revoked`` event reaches every socket of that user, which re-checks
  at once and closes within milliseconds when access is gone. (Sockets only
  listen: a role change matters to the writes, which go over HTTP.)
- **The safety net**: every action from the client re-checks the session and
  the membership in the database, once, and events to the client re-check at
  most ``RECHECK_SECONDS`` apart, so a lost event (a Redis blip) costs at most that.

``LiveAccessMixin`` gives a consumer both, and joins and leaves its groups.
Other long-lived things (API streams) listen to the same group or call the same checks.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import transaction
from django.utils.crypto import constant_time_compare

REVOKED_EVENT = "access.revoked"
CLOSE_REVOKED = 4403
CLOSE_NOT_FOUND = 4404  # an anonymous visitor, an outsider, or nothing there: the same answer
# Events to the client re-check the database at most this often (the revoked
# event is the fast path; this bounds the damage when it is lost).
RECHECK_SECONDS = 1.0


# Rules of upper apps that every live connection obeys besides its own ``access_reload``, each
# ``gate(user=..., url_kwargs=...) -> bool`` (workspaces: a team that requires two-factor).
_live_gates: list[Callable[..., bool]] = []


def live_access_gate_register(gate: Callable[..., bool]) -> None:
    """Add a rule every socket checks at connect and at each re-check (registered in an app's ready())."""
    if gate not in _live_gates:
        _live_gates.append(gate)


def _gates_pass(*, user: Any, url_kwargs: dict[str, Any]) -> bool:
    return all(gate(user=user, url_kwargs=url_kwargs) for gate in _live_gates)


def user_group_name(user_id: int) -> str:
    """The channel-layer group every live connection of one user joins."""
    return f"user_{int(user_id)}"


def access_revoke(*, user_id: int, reason: str) -> None:
    """After the transaction commits, tell every live connection of ``user_id`` to re-check its access.

    Safe to call outside a transaction (it then publishes at once). Connections
    whose access is gone close; the others pick up the new role.
    """
    from webapp.core.events import get_publisher

    event = {"type": REVOKED_EVENT, "reason": reason}
    group = user_group_name(user_id)
    transaction.on_commit(lambda: get_publisher().publish(group, event))


def session_user_current(*, session_key: str | None, user_id: int | None) -> bool:
    """Whether the session still exists, still logs in ``user_id``, and matches their password.

    Logging out deletes the session; changing the password changes the hash
    that every other session holds (Django's own rule for requests).
    """
    if not session_key or user_id is None:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if not store.exists(session_key):
        return False
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user_id) or BACKEND_SESSION_KEY not in data:
        return False
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    return bool(session_hash) and constant_time_compare(session_hash, user.get_session_auth_hash())


class LiveAccessMixin:
    """For channels consumers: open, join and leave the groups, re-check access on actions and events.

    Subclasses implement two things, both about what the URL names (never about
    anything the client sends):

    - ``access_reload()`` (sync, runs in a DB thread): load what the socket shows
      through a membership-scoped selector, keep what the consumer needs, and
      return False when the user may no longer see it. It is the one access check:
      at connect, before each client action, and before events (at most
      ``RECHECK_SECONDS`` apart).
    - ``access_groups()``: the socket's channel-layer groups, named from what
      ``access_reload`` loaded and the session's user.

    The rules upper apps register (``live_access_gate_register``) are checked with it, every time.

    The mixin's ``connect`` closes with ``CLOSE_NOT_FOUND`` for anonymous
    visitors and outsiders; otherwise it joins ``user_<id>`` and the socket's
    groups, then accepts. ``disconnect`` leaves them all. A client action
    calls ``access_allowed(fresh=True)`` once, then works on what it loaded.
    """

    scope: dict[str, Any]
    channel_layer: Any
    channel_name: str

    _access_ok: bool = False
    _access_checked: float = 0.0
    _groups: tuple[str, ...] = ()

    def access_reload(self) -> bool:
        raise NotImplementedError

    def access_groups(self) -> list[str]:
        raise NotImplementedError

    def _access_open_sync(self) -> bool:
        user = self.scope.get("user")
        return user is not None and user.is_authenticated and self.access_reload() and self._gates_pass_sync()

    def _gates_pass_sync(self) -> bool:
        return _gates_pass(user=self.scope["user"], url_kwargs=self.scope.get("url_route", {}).get("kwargs", {}))

    def _access_check_sync(self) -> bool:
        user = self.scope.get("user")
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        if user is None or not user.is_authenticated:
            return False
        return (session_user_current(session_key=session_key, user_id=user.pk) and self.access_reload()
                and self._gates_pass_sync())

    async def connect(self) -> None:
        if not await database_sync_to_async(self._access_open_sync)():
            await self.close(code=CLOSE_NOT_FOUND)  # type: ignore[attr-defined]
            return
        await self.access_join()
        await self.accept()  # type: ignore[attr-defined]

    async def disconnect(self, code: int) -> None:
        await self.access_leave()

    async def access_join(self) -> None:
        """Join ``user_<id>`` (the revoked events) and the socket's own groups; access holds from now."""
        self._groups = (user_group_name(self.scope["user"].pk), *self.access_groups())
        for group in self._groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self._access_ok, self._access_checked = True, time.monotonic()

    async def access_leave(self) -> None:
        groups, self._groups = self._groups, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def access_allowed(self, *, fresh: bool = False) -> bool:
        """True while access holds; closes the socket (once) when it is gone.

        ``fresh`` forces a database check (client actions); otherwise a result
        younger than ``RECHECK_SECONDS`` is reused (events to the client).
        """
        if not self._access_ok:
            return False
        if fresh or time.monotonic() - self._access_checked >= RECHECK_SECONDS:
            # Off the single thread that thread-sensitive calls share: an event's check must
            # not wait behind other sockets' writes (8 people sending at once, say).
            ok = await database_sync_to_async(self._access_check_sync, thread_sensitive=False)()
            self._access_checked = time.monotonic()
            if not ok:
                self._access_ok = False
                await self.close(code=CLOSE_REVOKED)  # type: ignore[attr-defined]
                return False
        return True

    async def access_revoked(self, event: dict[str, Any]) -> None:
        """The ``access.revoked`` event: re-check now."""
        await self.access_allowed(fresh=True)

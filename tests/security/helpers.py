"""Helpers for the attack tests: sockets that carry a persona's session through the whole ASGI stack."""
from __future__ import annotations

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from webapp.asgi import application


def allowed_origin() -> str:
    """The first origin the settings trust (what a browser on Atelier's own page sends)."""
    return settings.ATELIER_ORIGINS[0]


def session_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def socket_for(path: str, client: Client | None = None, origin: str | None = "") -> WebsocketCommunicator:
    """A communicator on ``path`` with ``client``'s session cookie; ``origin=None`` sends no Origin."""
    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", (origin or allowed_origin()).encode()))
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def mship(user, where):
    """``user``'s membership of the team that owns ``where`` (a project or a conversation)."""
    from webapp.workspaces.models import Membership

    project = getattr(where, "project", where)
    return Membership.objects.select_related("team", "user").get(team_id=project.team_id, user=user)

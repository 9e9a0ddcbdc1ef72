"""The client's address behind your own proxies: the one they appended, never one the client wrote.

An appending proxy (nginx's ``$proxy_add_x_forwarded_for``, Caddy, a cloud load
balancer) adds the address of whoever connected to it to the *end* of
``X-Forwarded-For``. Everything left of that is whatever the client sent. daphne's
own ``--proxy-headers`` takes the leftmost entry, so a client behind such a proxy
picks its own address (and dodges the per-address login lockout). This ASGI
middleware takes the entry that the nearest ``ATELIER_TRUSTED_PROXY_COUNT``
proxies appended, and does nothing unless ``ATELIER_PROXY_HEADERS`` is on.
"""
from __future__ import annotations

import ipaddress
import sys
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_HTTPS_SCHEMES = {"http": "https", "websocket": "wss"}
_PLAIN_SCHEMES = {"http": "http", "websocket": "ws"}


def _header_values(scope: dict[str, Any], name: bytes) -> list[str]:
    """Every comma-separated entry of every ``name`` header, in order."""
    return [
        part.strip()
        for key, value in scope.get("headers", ())
        if key.lower() == name
        for part in value.decode("latin-1").split(",")
        if part.strip()
    ]


def _address(entry: str) -> str | None:
    """The IP address in an X-Forwarded-For entry (``[::1]:443`` and ``1.2.3.4:80`` too), or None."""
    host = entry
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def forwarded_scope(scope: dict[str, Any], *, trusted: int) -> dict[str, Any]:
    """``scope`` with the client and scheme that ``trusted`` appending proxies vouch for.

    With fewer entries than proxies the request did not come through all of them:
    the scope is left as it is (the peer stays the client), as is a garbled entry.
    """
    forwarded = _header_values(scope, b"x-forwarded-for")
    if len(forwarded) < trusted:
        return scope
    client = _address(forwarded[-trusted])
    if client is None:
        return scope
    scope = dict(scope, client=(client, 0))
    protos = _header_values(scope, b"x-forwarded-proto")
    if protos and protos[-1].lower() in {"http", "https"}:
        schemes = _HTTPS_SCHEMES if protos[-1].lower() == "https" else _PLAIN_SCHEMES
        scope["scheme"] = schemes.get(scope["type"], scope.get("scheme"))
    return scope


class ProxyHeadersMiddleware:
    """Wraps the whole ASGI application (HTTP and websockets); reads the settings on every connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in {"http", "websocket"} and settings.ATELIER_PROXY_HEADERS:
            scope = forwarded_scope(scope, trusted=settings.ATELIER_TRUSTED_PROXY_COUNT)
        return await self.app(scope, receive, send)


def refuse_daphne_proxy_flag(argv: Sequence[str] | None = None) -> None:
    """daphne's ``--proxy-headers`` believes the leftmost, client-written entry: refuse to start with it."""
    argv = sys.argv if argv is None else argv
    if any(arg == "--proxy-headers" or arg.startswith("--proxy-headers=") for arg in argv[1:]):
        raise ImproperlyConfigured(
            "daphne's --proxy-headers takes the leftmost X-Forwarded-For entry, which a client can forge: "
            "drop it and set ATELIER_PROXY_HEADERS=1 (and ATELIER_TRUSTED_PROXY_COUNT) instead."
        )

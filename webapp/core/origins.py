"""The websocket Origin check: scheme, host and port, from the same list as CSRF_TRUSTED_ORIGINS.

A browser always sends Origin on a websocket handshake, and a page of another
local web app (``http://localhost:3000``) sends its own; channels'
``AllowedHostsOriginValidator`` compared only the host, so that page could open
our sockets with the user's cookie. ``null`` (sandboxed frames, ``file:``) and
a missing Origin are refused whatever the settings say.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class SettingsOriginValidator(OriginValidator):
    """``OriginValidator`` over ``settings.ATELIER_ORIGINS``, read on every handshake."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None or not parsed_origin.scheme or not parsed_origin.hostname:
            return False
        # Only full origins (scheme://host[:port]); "*" or a bare host would ignore scheme and port.
        self.allowed_origins = [o for o in settings.ATELIER_ORIGINS if "://" in o and "*" not in o]
        return bool(self.validate_origin(parsed_origin))

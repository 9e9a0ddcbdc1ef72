"""Where Atelier's e-mail goes: EMAIL_URL's SMTP server, or by default ``.eml`` files in var/mail/.

The embedded default needs no mail server: each message becomes one file, and a log line names it
and the first link in it, so the operator of a laptop install can hand a reset link over by hand.
"""
from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

logger = logging.getLogger(__name__)

# scheme -> (implicit TLS, STARTTLS, default port)
_SMTP_SCHEMES = {"smtp": (False, False, 25), "smtp+tls": (False, True, 587), "smtp+ssl": (True, False, 465),
                 "smtps": (True, False, 465)}
_LINK = re.compile(r"https?://[^\s<>\"']+")


def email_url_settings(url: str) -> dict[str, Any]:
    """Django's EMAIL_* settings for ``EMAIL_URL``: ``smtp://``, ``smtp+tls://`` (STARTTLS), ``smtp+ssl://``
    (or ``smtps://``, TLS from the start), ``user:password@host:port``, quoted where needed, and an optional
    ``?timeout=SECONDS``. Anything else is an error naming EMAIL_URL."""
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_SCHEMES or not parts.hostname:
        raise ImproperlyConfigured(
            f"EMAIL_URL must look like smtp+tls://user:password@host:587 (schemes: {', '.join(_SMTP_SCHEMES)}), "
            f"not {parts.scheme or '(no scheme)'}://...")
    use_ssl, use_tls, port = _SMTP_SCHEMES[parts.scheme]
    query = parse_qs(parts.query)
    try:
        timeout = float(query["timeout"][0]) if "timeout" in query else None
        port = parts.port or port
    except ValueError as error:
        raise ImproperlyConfigured(f"EMAIL_URL: {error}") from None
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname, "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""), "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": use_ssl, "EMAIL_USE_TLS": use_tls,
        **({"EMAIL_TIMEOUT": timeout} if timeout is not None else {}),
    }


def mail_dir() -> Path:
    return Path(settings.VAR_DIR) / "mail"


class EmlFileBackend(BaseEmailBackend):
    """Writes each message to ``var/mail/<time>-<random>.eml`` (owner-readable only: reset links are
    secrets) and logs a line naming the file, the recipients and the message's first link."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        folder = mail_dir()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = folder / f"{stamp}-{secrets.token_hex(4)}.eml"
            try:
                path.touch(mode=0o600, exist_ok=False)
                path.write_bytes(message.message().as_bytes(linesep="\n"))
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            link = _LINK.search(str(message.body))
            logger.warning("Mail to %s (%r) written to %s%s", ", ".join(message.recipients()), message.subject,
                           path, f"; its link: {link.group(0)}" if link else "")
            sent += 1
        return sent

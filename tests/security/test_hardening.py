"""Hardening: CSP and security headers, cookie flags, no inline script anywhere, a password
on the embedded Redis (proxy headers: test_proxy_lockout.py)."""
from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


def test_pages_carry_a_strict_content_security_policy(client_for, bob, project):
    response = client_for(bob).get(f"/projects/{project.pk}/")
    csp = _csp(response)
    assert csp["object-src"] == "object-src 'none'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["script-src"] == "script-src 'self'"
    assert "unsafe" not in response["Content-Security-Policy"]


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Content-Security-Policy" in response


def test_the_session_cookie_is_http_only_and_same_site(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def test_no_template_has_inline_script_or_handlers():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        if INLINE_HANDLER.search(text) or INLINE_SCRIPT.search(text) or "javascript:" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_the_test_redis_requires_a_password(redis_server):
    url = redis.connection.parse_url(settings.REDIS_URL)
    assert url.get("password")
    bare = redis.Redis(host=url["host"], port=url["port"])
    with pytest.raises(redis.exceptions.AuthenticationError):
        bare.ping()


def test_the_embedded_redis_password_is_generated_once_and_private(tmp_path):
    from webapp.core.embedded_redis import password_file, server_command

    path = tmp_path / "redis_password"
    first = password_file(path)
    assert len(first) >= 32 and password_file(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cmd = server_command(port=6999, data_dir=tmp_path / "redis", password=first)
    assert first not in " ".join(cmd)  # never on the command line (ps shows it)
    assert f"requirepass {first}" in (tmp_path / "redis" / "auth.conf").read_text()


# The Procfile's daphne and ATELIER_PROXY_HEADERS: tests/security/test_proxy_lockout.py.

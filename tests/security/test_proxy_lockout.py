"""Issue 23, finding 10: the traps around the client address and the login lockout.

- ``ATELIER_PROXY_HEADERS=0`` turned proxy headers on (the Procfile tested for non-empty).
- daphne's ``--proxy-headers`` believes the leftmost ``X-Forwarded-For`` entry, which a client
  behind an appending proxy writes itself: it dodged the per-address lockout at will.
- Locking by username alone let anyone lock any account out from anywhere.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from tests.factories import PASSWORD, UserFactory
from tests.helpers import ROOT
from tests.security.test_setup_token import settings_as_started
from webapp.core.proxy import forwarded_scope, refuse_daphne_proxy_flag


def _web_command(**env: str) -> str:
    line = next(entry for entry in (ROOT / "Procfile").read_text().splitlines() if entry.startswith("web:"))
    command = line.split(":", 1)[1]
    clean = {k: v for k, v in os.environ.items() if k != "ATELIER_PROXY_HEADERS"}
    return subprocess.run(["sh", "-c", f"echo {command}"], env={**clean, **env}, capture_output=True, text=True).stdout


@pytest.mark.parametrize("value", ["", "0", "1", "false"])
def test_the_procfile_never_hands_daphne_its_leftmost_entry_parser(value):
    assert "--proxy-headers" not in _web_command(ATELIER_PROXY_HEADERS=value)


@pytest.mark.parametrize(("value", "on"), [("0", False), ("false", False), ("off", False), ("", False),
                                           ("1", True), ("true", True), ("ON", True)])
def test_proxy_headers_parse_strictly(monkeypatch, value, on):
    monkeypatch.setenv("ATELIER_PROXY_HEADERS", value)
    assert settings_as_started(monkeypatch)["ATELIER_PROXY_HEADERS"] is on


@pytest.mark.parametrize(("name", "value"), [("ATELIER_PROXY_HEADERS", "enabled"), ("DEBUG", "2"),
                                             ("ATELIER_TRUSTED_PROXY_COUNT", "0"),
                                             ("ATELIER_TRUSTED_PROXY_COUNT", "one")])
def test_a_bad_value_stops_the_start_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        settings_as_started(monkeypatch)


def _scope(forwarded: str | None, proto: str | None = None, kind: str = "http") -> dict:
    headers = [(b"host", b"atelier.example.com")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    if proto is not None:
        headers.append((b"x-forwarded-proto", proto.encode()))
    return {"type": kind, "client": ("10.0.0.2", 4000), "scheme": "http" if kind == "http" else "ws",
            "headers": headers}


def test_only_the_address_the_trusted_proxy_appended_counts():
    assert forwarded_scope(_scope("6.6.6.6, 203.0.113.9"), trusted=1)["client"] == ("203.0.113.9", 0)
    assert forwarded_scope(_scope("6.6.6.6, 203.0.113.9, 10.0.0.1"), trusted=2)["client"] == ("203.0.113.9", 0)
    # Two header lines are one list, in order.
    scope = _scope("6.6.6.6")
    scope["headers"].append((b"x-forwarded-for", b"203.0.113.9"))
    assert forwarded_scope(scope, trusted=1)["client"] == ("203.0.113.9", 0)
    assert forwarded_scope(_scope("[2001:db8::1]:443"), trusted=1)["client"] == ("2001:db8::1", 0)


def test_too_few_entries_or_garbage_leave_the_peer_as_the_client():
    assert forwarded_scope(_scope("203.0.113.9"), trusted=2)["client"] == ("10.0.0.2", 4000)
    assert forwarded_scope(_scope("6.6.6.6, not-an-address"), trusted=1)["client"] == ("10.0.0.2", 4000)
    assert forwarded_scope(_scope(None), trusted=1)["client"] == ("10.0.0.2", 4000)


def test_the_scheme_follows_the_trusted_proxy():
    assert forwarded_scope(_scope("203.0.113.9", "https"), trusted=1)["scheme"] == "https"
    assert forwarded_scope(_scope("203.0.113.9", "https", kind="websocket"), trusted=1)["scheme"] == "wss"
    assert forwarded_scope(_scope("203.0.113.9", "gopher"), trusted=1)["scheme"] == "http"


def test_daphne_own_proxy_flag_is_refused():
    with pytest.raises(ImproperlyConfigured, match="ATELIER_PROXY_HEADERS"):
        refuse_daphne_proxy_flag(["daphne", "-b", "0.0.0.0", "--proxy-headers", "webapp.asgi:application"])  # noqa: S104
    refuse_daphne_proxy_flag(["daphne", "-b", "0.0.0.0", "webapp.asgi:application"])  # noqa: S104


@pytest.fixture
def procfile_daphne(transactional_db) -> Iterator[callable]:
    """``start(**env)``: the Procfile's web process with ``env``; returns its base URL."""
    from django.db import connection

    from webapp.core.embedded_redis import free_port

    processes: list[subprocess.Popen] = []

    def start(**extra: str) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"ATELIER_PROXY_HEADERS", "CSRF_TRUSTED_ORIGINS"}}
        env.update(ATELIER_DATABASE_NAME=str(connection.settings_dict["NAME"]), ATELIER_HOST="127.0.0.1",
                   ATELIER_PORT=str(port), PATH=f"{os.path.dirname(sys.executable)}:{env.get('PATH', '')}", **extra)
        command = next(e for e in (ROOT / "Procfile").read_text().splitlines() if e.startswith("web:")).split(":", 1)[1]
        process = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/accounts/login/", timeout=2):  # noqa: S310
                    return base
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Procfile's daphne did not start") from None
                time.sleep(0.2)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


CSRF = "a" * 32


def _login(base: str, username: str, forwarded: str) -> int:
    body = urllib.parse.urlencode({"username": username, "password": "wrong guess", "csrfmiddlewaretoken": CSRF})
    request = urllib.request.Request(f"{base}/accounts/login/", data=body.encode(), headers={  # noqa: S310
        "Cookie": f"csrftoken={CSRF}", "X-Forwarded-For": forwarded,
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.stack
def test_a_client_behind_an_appending_proxy_cannot_forge_its_way_past_the_address_lockout(procfile_daphne, settings):
    """The proxy appends 203.0.113.9 (who connected to it); the client writes a new address in front each time."""
    base = procfile_daphne(ATELIER_PROXY_HEADERS="1")
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(base, f"guess{n}", f"198.51.100.{n}, 203.0.113.9")
    assert _login(base, "guess-again", "198.51.100.200, 203.0.113.9") == 429


@pytest.mark.stack
def test_proxy_headers_zero_leaves_forwarded_for_alone(procfile_daphne, settings):
    """Off means off: the address is the peer's (here 127.0.0.1), whatever the header says."""
    base = procfile_daphne(ATELIER_PROXY_HEADERS="0")
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(base, f"guess{n}", f"198.51.100.{n}")
    assert _login(base, "guess-again", "198.51.100.201") == 429


def _fail(client, username: str, address: str):
    return client.post("/accounts/login/", {"username": username, "password": "wrong guess"}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_a_stranger_cannot_lock_the_owner_out_of_their_account(client, settings):
    cache.clear()
    UserFactory(username="alice", email="alice@example.com")
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        _fail(client, "alice", "10.6.6.6")
    assert _fail(client, "alice", "10.6.6.6").status_code == 429  # the stranger's address is locked
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 302  # alice, from her own address, logs in


@pytest.mark.django_db
def test_the_account_is_told_once_about_a_lockout(client, settings):
    cache.clear()
    UserFactory(username="alice", email="alice@example.com")
    UserFactory(username="nomail", email="")
    for _ in range(settings.AXES_FAILURE_LIMIT + 3):
        _fail(client, "alice", "10.6.6.7")
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert "10.6.6.7" in mail.outbox[0].body and "password" in mail.outbox[0].body
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        _fail(client, "nomail", "10.6.6.8")  # no address to write to: logged only
    assert len(mail.outbox) == 1

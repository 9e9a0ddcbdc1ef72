"""Issue 23, finding 1: whoever signs up first owns the site, unless the setup token stops them.

The README's "Scale it" recipe runs ``daphne -b 0.0.0.0`` without ``ATELIER_HOST``. The
token must be required there (and on every other launch path) unless the request provably
came from this machine; only an explicit ``ATELIER_SETUP_TOKEN_REQUIRED=0`` turns it off,
and ``manage.py check --deploy`` warns while that leaves the site open to be claimed.
"""
from __future__ import annotations

import runpy
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.core.management import call_command
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory
from tests.helpers import ROOT
from webapp.accounts import services
from webapp.accounts.models import User

pytestmark = pytest.mark.django_db

SETTINGS_VARIABLES = ("ATELIER_HOST", "ATELIER_PORT", "ATELIER_SETUP_TOKEN_REQUIRED", "ALLOWED_HOSTS",
                      "CSRF_TRUSTED_ORIGINS")


def settings_as_started(monkeypatch, **env: str) -> dict:
    """webapp/settings.py as a process started with exactly these variables (of the ones above) builds them."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "webapp" / "settings.py"))


def _apply(settings, built: dict) -> None:
    for name in ("ATELIER_HOST", "ATELIER_IS_LOOPBACK", "ATELIER_SETUP_TOKEN_REQUIRED"):
        setattr(settings, name, built[name])


def _signup(client, username: str, **extra):
    return client.post(reverse("accounts:signup"),
                       {"username": username, "password1": PASSWORD, "password2": PASSWORD}, **extra)


def test_the_readme_daphne_recipe_does_not_hand_the_site_to_the_first_visitor(client, settings, monkeypatch):
    """``ALLOWED_HOSTS=atelier.example.com python -m daphne -b 0.0.0.0 ...``: no ATELIER_HOST, no token variable."""
    _apply(settings, settings_as_started(monkeypatch, ALLOWED_HOSTS="atelier.example.com"))
    settings.ALLOWED_HOSTS = ["atelier.example.com"]
    response = _signup(client, "intruder", HTTP_HOST="atelier.example.com", REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 200
    assert not User.objects.exists()
    assert b"setup token" in response.content


def test_a_request_through_a_proxy_on_the_same_machine_still_needs_the_token(client, settings, monkeypatch):
    _apply(settings, settings_as_started(monkeypatch))
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    _signup(client, "intruder", HTTP_HOST="127.0.0.1:8000", REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert not User.objects.exists()


def _asgi_request(*, server: tuple[str, int], client: tuple[str, int], host: str, headers=()) -> ASGIRequest:
    scope = {"type": "http", "method": "GET", "path": "/accounts/signup/", "query_string": b"",
             "server": server, "client": client, "headers": [(b"host", host.encode()), *headers]}
    return ASGIRequest(scope, StringIO())


def test_only_a_request_that_arrived_on_loopback_from_loopback_is_local():
    local = _asgi_request(server=("127.0.0.1", 8000), client=("127.0.0.1", 5000), host="127.0.0.1:8000")
    assert services.request_is_local(local)
    assert services.request_is_local(_asgi_request(server=("::1", 8000), client=("::1", 5000), host="[::1]:8000"))
    # daphne -b 0.0.0.0, reached on the machine's network address: the socket says so, whatever the Host says.
    assert not services.request_is_local(
        _asgi_request(server=("192.0.2.10", 8000), client=("127.0.0.1", 5000), host="localhost:8000"))
    assert not services.request_is_local(
        _asgi_request(server=("127.0.0.1", 8000), client=("198.51.100.7", 5000), host="127.0.0.1:8000"))
    assert not services.request_is_local(
        _asgi_request(server=("127.0.0.1", 8000), client=("127.0.0.1", 5000), host="atelier.example.com"))
    assert not services.request_is_local(
        _asgi_request(server=("127.0.0.1", 8000), client=("127.0.0.1", 5000), host="127.0.0.1:8000",
                      headers=[(b"x-forwarded-for", b"203.0.113.5")]))
    assert not services.request_is_local(None)


def test_unset_the_token_is_required_except_for_a_local_request_to_a_loopback_install(settings, monkeypatch):
    _apply(settings, settings_as_started(monkeypatch))  # make run's default: HOST=127.0.0.1
    assert settings.ATELIER_SETUP_TOKEN_REQUIRED is None
    local = _asgi_request(server=("127.0.0.1", 8000), client=("127.0.0.1", 5000), host="127.0.0.1:8000")
    remote = _asgi_request(server=("192.0.2.10", 8000), client=("198.51.100.7", 5000), host="192.0.2.10:8000")
    assert not services.setup_token_required(local)
    assert services.setup_token_required(remote)
    assert services.setup_token_required(None)  # the service without a request: required
    _apply(settings, settings_as_started(monkeypatch, ATELIER_HOST="0.0.0.0"))  # noqa: S104 - make run HOST=0.0.0.0
    assert services.setup_token_required(local)


@pytest.mark.parametrize(("value", "required"), [("1", True), ("yes", True), ("0", False), ("off", False)])
def test_the_variable_decides_when_set(settings, monkeypatch, value, required):
    _apply(settings, settings_as_started(monkeypatch, ATELIER_SETUP_TOKEN_REQUIRED=value))
    local = _asgi_request(server=("127.0.0.1", 8000), client=("127.0.0.1", 5000), host="127.0.0.1:8000")
    assert services.setup_token_required(local) is required


def test_a_garbled_value_stops_the_start_naming_the_variable(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="ATELIER_SETUP_TOKEN_REQUIRED"):
        settings_as_started(monkeypatch, ATELIER_SETUP_TOKEN_REQUIRED="nope")


def test_the_service_refuses_a_first_account_without_the_token_by_default(settings, monkeypatch):
    _apply(settings, settings_as_started(monkeypatch))
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.user_signup(username="intruder", email="", password=PASSWORD)


def _deploy_warnings() -> list[str]:
    from django.core.checks import run_checks

    return [message.id for message in run_checks(include_deployment_checks=True)]


def test_check_deploy_warns_while_the_token_is_off_and_no_account_exists(settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False
    assert "accounts.W001" in _deploy_warnings()
    UserFactory(username="admin")
    assert "accounts.W001" not in _deploy_warnings()


def test_check_deploy_is_quiet_while_the_token_is_on(settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = None
    assert "accounts.W001" not in _deploy_warnings()
    out = StringIO()
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False
    call_command("check", "--deploy", stdout=out, stderr=out)
    assert "accounts.W001" in out.getvalue()

"""Issue 20, point 3: two-factor with allauth.mfa (an authenticator app and recovery codes)."""
from __future__ import annotations

import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal import auth as totp_auth
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def _password_login(client: Client, username: str = "alice"):
    return client.post(reverse("accounts:login"), {"login": username, "password": PASSWORD})


@pytest.fixture
def alice_with_totp():
    """Alice, who turned on an authenticator app through the pages (QR code, first code): her secret
    and her recovery codes."""
    alice = UserFactory(username="alice")
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    client = Client()
    _password_login(client)
    # Turning two-factor on asks for the password again (allauth's reauthentication).
    assert client.get(reverse("mfa_activate_totp"))["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert b"data:image/svg+xml;base64," in page.content  # the QR code
    secret = re.search(r"secret=(\w+)", page.context["totp_url"]).group(1)
    response = client.post(reverse("mfa_activate_totp"), {"code": _code(secret)})
    assert response["Location"] == reverse("mfa_view_recovery_codes")
    codes = client.get(reverse("mfa_view_recovery_codes")).context["unused_codes"]
    return alice, secret, codes


def test_a_password_alone_no_longer_logs_in_once_totp_is_on(alice_with_totp):
    client = Client()
    response = _password_login(client)
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("workspaces:dashboard")).status_code == 302  # not in yet


def test_the_authenticator_code_completes_the_login(alice_with_totp, monkeypatch):
    _, secret, _ = alice_with_totp
    # The next 30-second window: the activation's code is spent, as the authenticator app moves on.
    later = time.time() + 30
    monkeypatch.setattr(totp_auth.time, "time", lambda: later)
    client = Client()
    _password_login(client)
    wrong = client.post(reverse("mfa_authenticate"), {"code": f"{(int(_code(secret)) + 1) % 10**6:06d}"})
    assert wrong.status_code == 200 and "code" in wrong.context["form"].errors
    response = client.post(reverse("mfa_authenticate"), {"code": _code(secret)})
    assert response["Location"] == reverse("workspaces:dashboard")
    assert client.get(reverse("workspaces:dashboard")).status_code == 200
    # A code works once: replayed in another login, it is refused.
    replay = Client()
    _password_login(replay)
    assert replay.post(reverse("mfa_authenticate"), {"code": _code(secret)}).status_code == 200


def test_a_recovery_code_logs_in_once(alice_with_totp):
    _, _, codes = alice_with_totp
    client = Client()
    _password_login(client)
    assert client.post(reverse("mfa_authenticate"), {"code": codes[0]})["Location"] == reverse("workspaces:dashboard")
    again = Client()
    _password_login(again)
    assert again.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 200  # spent
    assert again.get(reverse("workspaces:dashboard")).status_code == 302


def test_two_factor_needs_a_verified_address_first(client):
    alice = UserFactory(username="alice")
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=False)
    _password_login(client)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    response = client.post(reverse("mfa_activate_totp"), {"code": "123456"})
    assert not Authenticator.objects.filter(user=alice).exists()
    assert response.status_code in {200, 302}


@pytest.mark.usefixtures("redis_server")  # the API counts requests per key in Redis
def test_api_keys_need_no_second_factor(alice_with_totp, project, alice):
    from tests.helpers import ApiClient, make_key

    response = ApiClient(make_key(alice, project).secret).get("/v1/models")
    assert response.status_code == 200

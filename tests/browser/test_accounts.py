"""Issue 20 in a real browser against daphne: a password reset through the embedded mail folder, and
two-factor set up from its page and then asked at login."""
from __future__ import annotations

import email
import re
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.conf import settings

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a brand new passphrase 93"


def _log_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def _mail_to(address: str, since: float, timeout: float = 20) -> email.message.Message:
    """The newest .eml in var/mail/ addressed to ``address`` and written after ``since`` (the operator's view)."""
    folder = settings.VAR_DIR / "mail"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.exists() else []:
            if path.stat().st_mtime >= since:
                message = email.message_from_bytes(path.read_bytes())
                if message["To"] == address:
                    return message
        time.sleep(0.2)
    raise AssertionError(f"no mail to {address} in {folder}")


def _body(message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def test_a_forgotten_password_is_reset_through_the_mailed_link(asgi_server, new_page):
    UserFactory(username="alice", email="alice@example.com")
    page = new_page()
    page.goto(f"{asgi_server}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").first.click()
    since = time.time() - 1
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_role("button", name="Reset My Password").click()
    page.wait_for_url(re.compile(r"/accounts/password/reset/done/$"))
    link = re.search(r"http://\S+/password/reset/key/\S+", _body(_mail_to("alice@example.com", since))).group(0)
    page.goto(link)
    page.get_by_label("New Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New Password (again)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change Password").click()
    page.wait_for_url(re.compile(r"/accounts/password/reset/key/done/$"))
    _log_in(page, asgi_server, "alice", NEW_PASSWORD)
    page.wait_for_url(f"{asgi_server}/")
    assert page.get_by_text("alice").first.is_visible()
    # The link worked once.
    page.goto(link)
    assert page.get_by_text("invalid").first.is_visible()


def _code(secret: str, counter: int) -> str:
    return format_hotp_value(hotp_value(secret, counter))


def test_two_factor_is_set_up_from_its_page_and_asked_at_login(asgi_server, new_page):
    alice = UserFactory(username="alice", email="alice@example.com")
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    page = new_page()
    _log_in(page, asgi_server, "alice")
    page.wait_for_url(f"{asgi_server}/")
    page.get_by_role("link", name="Two-factor").click()
    page.goto(f"{asgi_server}/accounts/2fa/totp/activate/")
    page.get_by_label("Password").fill(PASSWORD)  # changing two-factor asks for the password again
    page.get_by_role("button", name="Confirm").click()
    assert page.locator("img[src^='data:image/svg+xml;base64,']").first.is_visible()  # the QR code
    secret = page.locator("#authenticator_secret").input_value()
    counter = int(time.time()) // 30
    page.get_by_label("Authenticator code").fill(_code(secret, counter))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(re.compile(r"/accounts/2fa/recovery-codes/$"))
    page.get_by_role("button", name="Log out").click()

    _log_in(page, asgi_server, "alice")
    page.wait_for_url(re.compile(r"/accounts/2fa/authenticate/$"))
    while int(time.time()) // 30 == counter:  # the activation's code is spent: the app's next one
        time.sleep(0.5)
    page.get_by_label("Code").fill(_code(secret, int(time.time()) // 30))
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url(f"{asgi_server}/")
    assert page.get_by_role("button", name="Log out").is_visible()


def test_a_security_key_is_added_and_asked_at_login(asgi_server, new_page):
    """WebAuthn through allauth's own scripts (under our CSP), with Chromium's virtual authenticator.
    On http the relying party must be ``localhost`` (an IP address is no RP ID)."""
    alice = UserFactory(username="alice", email="alice@example.com")
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    base = asgi_server.replace("127.0.0.1", "localhost")
    page = new_page()
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    _log_in(page, base, "alice")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/accounts/2fa/webauthn/add/")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_label("Name").fill("my key")
    page.get_by_role("button", name="Add").click()
    page.wait_for_url(re.compile(r"/accounts/2fa/(recovery-codes|webauthn)/$"))
    page.get_by_role("button", name="Log out").click()

    _log_in(page, base, "alice")
    page.wait_for_url(re.compile(r"/accounts/2fa/authenticate/$"))
    page.get_by_role("button", name="Use a security key").click()
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("button", name="Log out").is_visible()

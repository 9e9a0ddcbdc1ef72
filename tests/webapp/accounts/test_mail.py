"""Issue 20, point 2: e-mail (EMAIL_URL or .eml files in var/mail/), password reset, verification,
address changes, and no account enumeration through reset or sign-up."""
from __future__ import annotations

import email
import logging
import re
import socket
import stat
import time
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory
from tests.helpers import wait_for
from webapp.accounts.mail import EmlFileBackend, email_url_settings
from webapp.accounts.models import User

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 93"
LINK = re.compile(r"https?://\S+")


def test_email_url_configures_smtp_with_starttls_and_quoted_credentials():
    conf = email_url_settings("smtp+tls://me%40acme.example:p%40ss%3Aw@mail.acme.example:2587?timeout=7")
    assert conf["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (conf["EMAIL_HOST"], conf["EMAIL_PORT"], conf["EMAIL_HOST_USER"], conf["EMAIL_HOST_PASSWORD"]) == (
        "mail.acme.example", 2587, "me@acme.example", "p@ss:w")
    assert (conf["EMAIL_USE_TLS"], conf["EMAIL_USE_SSL"], conf["EMAIL_TIMEOUT"]) == (True, False, 7.0)
    assert email_url_settings("smtps://mail.acme.example")["EMAIL_PORT"] == 465
    assert email_url_settings("smtp+ssl://mail.acme.example")["EMAIL_USE_SSL"] is True


@pytest.mark.parametrize("url", ["http://mail.example", "smtp+tls://", "mail.example:25"])
def test_a_bad_email_url_stops_the_start_naming_the_variable(url):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        email_url_settings(url)


def test_the_embedded_default_writes_an_eml_file_and_logs_its_name_and_link(settings, tmp_path, caplog):
    settings.VAR_DIR = tmp_path
    message = mail.EmailMessage("Reset", "Follow http://127.0.0.1:8000/accounts/password/reset/key/1-abc/ now.",
                                "atelier@localhost", ["alice@example.com"])
    with caplog.at_level(logging.WARNING, logger="webapp.accounts.mail"):
        assert EmlFileBackend().send_messages([message]) == 1
    (path,) = (tmp_path / "mail").glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a reset link is a secret
    parsed = email.message_from_bytes(path.read_bytes())
    assert parsed["To"] == "alice@example.com" and parsed["Subject"] == "Reset"
    assert str(path) in caplog.text
    assert "http://127.0.0.1:8000/accounts/password/reset/key/1-abc/" in caplog.text


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on a free port, and Django's SMTP backend pointed at it by EMAIL_URL."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    for name, value in email_url_settings(f"smtp://127.0.0.1:{controller.port}?timeout=10").items():
        setattr(settings, name, value)
    try:
        yield inbox
    finally:
        controller.stop()


def _body(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()


def _reset_link(inbox: _Inbox, count: int) -> str:
    wait_for(lambda: len(inbox.messages) >= count, 10, "the reset mail")
    return LINK.search(_body(inbox.messages[count - 1])).group(0)


def _set_new_password(client: Client, link: str):
    page = client.get(link, follow=True)
    assert b'name="password1"' in page.content, page.content[:2000]
    return client.post(page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


def test_password_reset_through_a_real_smtp_server_works_once(client, smtp_server):
    alice = UserFactory(username="alice", email="alice@example.com")
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert response.status_code == 302
    link = _reset_link(smtp_server, 1)
    assert smtp_server.messages[0]["To"] == "alice@example.com"
    assert _set_new_password(client, link).status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    # Single use: the same link again is refused with a clear page, and changes nothing.
    again = Client().get(link, follow=True)
    assert b"invalid" in again.content and b'name="password1"' not in again.content
    assert Client().post("/accounts/login/", {"login": "alice", "password": NEW_PASSWORD}).status_code == 302


def test_a_reset_link_past_its_time_is_refused(client, smtp_server, settings, monkeypatch):
    UserFactory(username="alice", email="alice@example.com")
    client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    link = _reset_link(smtp_server, 1)
    later = PasswordResetTokenGenerator._now(PasswordResetTokenGenerator())
    from datetime import timedelta

    monkeypatch.setattr(PasswordResetTokenGenerator, "_now",
                        lambda self: later + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 5))
    page = client.get(link, follow=True)
    assert b"invalid" in page.content and b'name="password1"' not in page.content
    assert User.objects.get(username="alice").check_password(PASSWORD)


def _timed_reset(client: Client, address: str) -> tuple[float, object]:
    start = time.perf_counter()
    response = client.post(reverse("account_reset_password"), {"email": address})
    return time.perf_counter() - start, response


def test_reset_answers_the_same_for_a_known_and_an_unknown_address(smtp_server):
    UserFactory(username="alice", email="alice@example.com")
    client = Client()
    known_times, unknown_times = [], []
    for n in range(5):
        took, known = _timed_reset(client, "alice@example.com")
        known_times.append(took)
        took, unknown = _timed_reset(client, f"nobody{n}@example.com")
        unknown_times.append(took)
        assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    # Both send one mail (the unknown address is told that it has no account) in the same timing class.
    wait_for(lambda: len(smtp_server.messages) >= 10, 10, "ten mails")
    known_median, unknown_median = sorted(known_times)[2], sorted(unknown_times)[2]
    assert max(known_median, unknown_median) / min(known_median, unknown_median) < 3


def test_signup_with_a_taken_address_answers_as_with_a_fresh_one(settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False
    UserFactory(username="alice", email="alice@example.com")
    answers = []
    for username, address in (("bob", "bob@example.com"), ("mallory", "alice@example.com")):
        response = Client().post(reverse("accounts:signup"), {
            "username": username, "email": address, "password1": PASSWORD, "password2": PASSWORD})
        answers.append((response.status_code, response["Location"]))
    assert answers[0] == answers[1]
    # The taken address stays alice's: mallory's copy is unverified and alice's account is untouched.
    assert User.objects.get(username="alice").email == "alice@example.com"
    assert not User.objects.get(username="mallory").emailaddress_set.filter(verified=True).exists()


def test_optional_verification_lets_the_account_in_and_sends_a_link(client, settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False
    response = client.post(reverse("accounts:signup"), {
        "username": "alice", "email": "alice@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response["Location"] == reverse("workspaces:dashboard")
    assert len(mail.outbox) == 1 and "alice@example.com" in mail.outbox[0].to
    link = LINK.search(mail.outbox[0].body).group(0)
    client.post(link)
    assert User.objects.get(username="alice").emailaddress_set.get().verified


def test_mandatory_verification_opens_the_account_only_after_the_link(client, settings):
    settings.ATELIER_SETUP_TOKEN_REQUIRED = False
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
    without = client.post(reverse("accounts:signup"), {"username": "bob", "password1": PASSWORD,
                                                       "password2": PASSWORD})
    assert without.status_code == 200 and "email" in without.context["form"].errors
    response = client.post(reverse("accounts:signup"), {
        "username": "alice", "email": "alice@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response["Location"] == reverse("account_email_verification_sent")
    assert client.get(reverse("workspaces:dashboard")).status_code == 302  # not logged in
    login = Client().post(reverse("accounts:login"), {"login": "alice", "password": PASSWORD})
    assert login["Location"] == reverse("account_email_verification_sent")
    link = LINK.search(mail.outbox[0].body).group(0)
    Client().post(link)
    assert Client().post(reverse("accounts:login"), {"login": "alice", "password": PASSWORD})["Location"] == "/"


def test_a_changed_address_counts_only_once_verified(client_for):
    from allauth.account.models import EmailAddress

    alice = UserFactory(username="alice", email="alice@example.com")
    EmailAddress.objects.create(user=alice, email="alice@example.com", primary=True, verified=True)
    client = client_for(alice)
    response = client.post(reverse("account_email"), {"action_add": "", "email": "alice@new.example"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"  # not yet
    (message,) = [m for m in mail.outbox if "alice@new.example" in m.to]
    client.post(LINK.search(message.body).group(0))
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"


def _settings_with(monkeypatch, **env: str) -> dict:
    import runpy

    from tests.helpers import ROOT

    for name in ("EMAIL_URL", "DEFAULT_FROM_EMAIL", "ATELIER_EMAIL_VERIFICATION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "webapp" / "settings.py"))


def test_settings_read_email_url_and_the_sender(monkeypatch):
    built = _settings_with(monkeypatch, EMAIL_URL="smtp+tls://bot:s3cret@mail.acme.example:587",
                           DEFAULT_FROM_EMAIL="Acme Atelier <atelier@acme.example>")
    assert built["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (built["EMAIL_HOST"], built["EMAIL_PORT"], built["EMAIL_USE_TLS"]) == ("mail.acme.example", 587, True)
    assert built["DEFAULT_FROM_EMAIL"] == "Acme Atelier <atelier@acme.example>"
    assert _settings_with(monkeypatch)["EMAIL_BACKEND"] == "webapp.accounts.mail.EmlFileBackend"


def test_mandatory_verification_makes_the_address_a_required_field(monkeypatch):
    assert "email*" in _settings_with(monkeypatch, ATELIER_EMAIL_VERIFICATION="mandatory")["ACCOUNT_SIGNUP_FIELDS"]
    with pytest.raises(ImproperlyConfigured, match="ATELIER_EMAIL_VERIFICATION"):
        _settings_with(monkeypatch, ATELIER_EMAIL_VERIFICATION="sometimes")

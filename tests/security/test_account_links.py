"""allauth's account pages (issue 20): each acts on the logged-in person's own account only, and its
e-mailed links are credentials that fit one account, once."""
from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://testserver(/\S+)")
OWN_ACCOUNT_PAGES = ["account_email", "account_change_password", "accounts:password_change", "account_set_password",
                     "account_reauthenticate", "mfa_index", "mfa_reauthenticate", "mfa_activate_totp",
                     "mfa_deactivate_totp", "mfa_view_recovery_codes", "mfa_generate_recovery_codes",
                     "mfa_download_recovery_codes", "mfa_list_webauthn", "mfa_add_webauthn",
                     "mfa_reauthenticate_webauthn"]


@pytest.mark.parametrize("name", OWN_ACCOUNT_PAGES)
def test_an_outsider_without_a_session_is_sent_to_log_in(name):
    response = Client().get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_an_outsider_cannot_add_an_address_to_someone_elses_account(client_for, alice, mallory):
    client_for(mallory).post(reverse("account_email"), {"action_add": "", "email": "mallory@evil.example",
                                                        "user": alice.pk})
    assert not EmailAddress.objects.filter(user=alice, email="mallory@evil.example").exists()
    assert EmailAddress.objects.filter(user=mallory, email="mallory@evil.example").exists()


def _reset_path(address: str) -> str:
    mail.outbox.clear()
    Client().post(reverse("account_reset_password"), {"email": address})
    (message,) = mail.outbox
    return LINK.search(message.body).group(1)


def test_an_outsider_cannot_turn_their_reset_link_onto_another_account(alice, mallory):
    """Mallory's key with alice's id (account_reset_password_from_key) is refused, and so is a made-up key."""
    match = re.search(r"/key/(\w+)-(.+)/$", _reset_path(mallory.email))
    uidb36, key = match.groups()
    alice_uid = re.search(r"/key/(\w+)-", _reset_path(alice.email)).group(1)
    for forged in (reverse("account_reset_password_from_key", kwargs={"uidb36": alice_uid, "key": key}),
                   reverse("account_reset_password_from_key", kwargs={"uidb36": uidb36, "key": "x" * len(key)})):
        client = Client()
        page = client.get(forged, follow=True)
        assert b'name="password1"' not in page.content and b"invalid" in page.content
        client.post(page.redirect_chain[-1][0] if page.redirect_chain else forged,
                    {"password1": "taken over 123456", "password2": "taken over 123456"})
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_an_outsider_cannot_confirm_an_address_with_a_made_up_key(client_for, mallory):
    EmailAddress.objects.create(user=mallory, email="m2@example.com", primary=False, verified=False)
    url = reverse("account_confirm_email", kwargs={"key": "made-up-key"})
    client = client_for(mallory)
    assert client.get(url).status_code in {200, 404}
    client.post(url)
    assert not EmailAddress.objects.get(email="m2@example.com").verified


@pytest.mark.parametrize("name", ["mfa_remove_webauthn", "mfa_edit_webauthn"])
def test_an_outsider_cannot_touch_someone_elses_security_key(name, alice, mallory):
    from allauth.mfa.models import Authenticator

    key = Authenticator.objects.create(user=alice, type=Authenticator.Type.WEBAUTHN,
                                       data={"name": "alice's key", "credential": {}})
    client = Client()
    client.post(reverse("accounts:login"), {"login": mallory.username, "password": PASSWORD})
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    url = reverse(name, kwargs={"pk": key.pk})
    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "mallory's now"}).status_code == 404
    key.refresh_from_db()
    assert key.data["name"] == "alice's key"

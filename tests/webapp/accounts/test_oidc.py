"""Issue 20, point 4: single sign-on with OIDC, against a real provider served in the test
(tests/oidc_provider.py: discovery, JWKS, signed ID tokens, a consent page, a `groups` claim)."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from tests.factories import TeamFactory, UserFactory
from tests.helpers import ApiClient, make_key
from tests.oidc_provider import OidcProvider, sso_login
from webapp.accounts.oidc_config import oidc_providers_setting, oidc_role_map_setting
from webapp.workspaces.models import Membership, Role

pytestmark = pytest.mark.django_db
User = get_user_model()
PROVIDER_ID = "acme-sso"
ROLE_MAP = {"design-leads": ("Acme", "admin"), "designers": ("Acme", "member"), "watchers": ("Acme", "viewer")}
FAILED = b"Third-Party Login Failure"


@pytest.fixture(scope="module")
def idp():
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def sso(idp, settings, monkeypatch):
    """Atelier configured for the test provider, as ATELIER_OIDC_PROVIDERS and ATELIER_OIDC_ROLE_MAP would."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    idp.tamper = {}
    idp.user = {"sub": "u-1", "email": "erin@example.com", "email_verified": True,
                "preferred_username": "erin", "groups": []}
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {
        **settings.SOCIALACCOUNT_PROVIDERS["openid_connect"],
        "APPS": oidc_providers_setting(json.dumps([idp.app_setting()])),
    }}
    settings.ATELIER_OIDC_ROLE_MAP = ROLE_MAP
    return idp


def _signed_in(client: Client) -> Any:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


@pytest.fixture
def someone(db):
    """Sign-up is open to others once the site has its first account (its admin)."""
    return UserFactory(username="admin0")


def test_the_login_page_has_a_sign_in_button_for_each_provider(client):
    page = client.get(reverse("accounts:login"))
    assert b"Sign in with Acme SSO" in page.content
    assert reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID}).encode() in page.content


def test_a_new_person_signs_in_and_gets_an_account_with_a_verified_address(client, sso, someone):
    response = sso_login(client, sso)
    assert response.status_code == 302 and response["Location"] == reverse("workspaces:dashboard")
    erin = _signed_in(client)
    assert erin.username == "erin" and erin.email == "erin@example.com"
    assert EmailAddress.objects.get(user=erin).verified
    assert SocialAccount.objects.get(user=erin).uid == "u-1"
    assert not erin.has_usable_password()


def test_the_first_account_of_the_site_is_not_made_by_single_sign_on(client, sso):
    response = sso_login(client, sso)
    assert _signed_in(client) is None and not User.objects.exists()
    assert b"closed" in response.content.lower()


def test_with_sign_up_closed_a_new_person_is_refused(client, sso, someone, settings):
    settings.ATELIER_SIGNUP = "closed"
    response = sso_login(client, sso)
    assert _signed_in(client) is None and not User.objects.filter(username="erin").exists()
    assert b"closed" in response.content.lower()


def test_an_existing_account_is_joined_by_a_verified_address_even_with_sign_up_closed(client, sso, alice, settings):
    settings.ATELIER_SIGNUP = "closed"
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    sso.user = {**sso.user, "email": alice.email}
    sso_login(client, sso)
    assert _signed_in(client) == alice
    assert SocialAccount.objects.get(uid="u-1").user == alice
    alice.refresh_from_db()
    assert alice.has_usable_password()  # her password still works


def test_an_address_the_provider_has_not_verified_joins_no_account(client, sso, alice):
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    sso.user = {**sso.user, "email": alice.email, "email_verified": False}
    sso_login(client, sso)
    assert _signed_in(client) != alice
    assert not SocialAccount.objects.filter(user=alice).exists()


def test_an_address_atelier_has_not_verified_joins_no_account(client, sso, alice):
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=False)
    sso.user = {**sso.user, "email": alice.email}
    sso_login(client, sso)
    assert _signed_in(client) != alice
    assert not SocialAccount.objects.filter(user=alice).exists()
    alice.refresh_from_db()
    assert alice.has_usable_password()


@pytest.mark.parametrize(("claim", "value"), [
    ("iss", "http://127.0.0.1:9/another-issuer"),
    ("aud", "another-client"),
    ("exp", int(time.time()) - 3600),
    ("nonce", "not-the-nonce-this-login-sent"),
])
def test_an_id_token_that_is_not_for_this_login_is_refused_with_a_clear_page(client, sso, someone, claim, value):
    sso.tamper = {claim: value}
    response = sso_login(client, sso)
    assert response.status_code == 401 and FAILED in response.content
    assert _signed_in(client) is None and not User.objects.filter(username="erin").exists()


def test_an_id_token_without_a_nonce_is_refused(client, sso, someone, monkeypatch):
    original = sso.approve

    def approve_dropping_nonce(query):
        return original({k: v for k, v in query.items() if k != "nonce"})

    monkeypatch.setattr(sso, "approve", approve_dropping_nonce)
    response = sso_login(client, sso)
    assert FAILED in response.content and _signed_in(client) is None


def test_a_tampered_state_is_refused_with_a_clear_page(client, sso, someone):
    response = sso_login(client, sso, state="tampered-state")
    assert FAILED in response.content
    assert _signed_in(client) is None and not User.objects.filter(username="erin").exists()


@pytest.mark.usefixtures("redis_server")  # the API counts requests per key in Redis
def test_groups_map_to_team_roles_at_each_login_and_a_lost_group_removes_the_membership(sso, team, someone):
    sso.user = {**sso.user, "groups": ["designers"]}
    sso_login(Client(), sso)
    erin = User.objects.get(username="erin")
    membership = Membership.objects.get(user=erin, team=team)
    assert membership.role == Role.MEMBER and membership.granted_by_sso
    # The highest role of the groups that map to a team.
    sso.user = {**sso.user, "groups": ["designers", "design-leads", "unmapped"]}
    sso_login(Client(), sso)
    assert Membership.objects.get(user=erin, team=team).role == Role.ADMIN
    project = team.projects.create(name="Launch", created_by=erin)
    key = make_key(erin, project)
    assert ApiClient(key.secret).get("/v1/models").status_code == 200
    # The group is gone at the provider: the membership ends as a manual removal does.
    sso.user = {**sso.user, "groups": ["unmapped"]}
    sso_login(Client(), sso)
    assert not Membership.objects.filter(user=erin, team=team).exists()
    assert ApiClient(key.secret).get("/v1/models").status_code == 401


def test_the_map_leaves_a_membership_made_by_hand_alone(sso, team, bob):
    EmailAddress.objects.create(user=bob, email=bob.email, primary=True, verified=True)
    sso.user = {**sso.user, "email": bob.email, "groups": ["watchers"]}
    sso_login(Client(), sso)
    assert Membership.objects.get(user=bob, team=team).role == Role.MEMBER
    sso.user = {**sso.user, "groups": []}
    sso_login(Client(), sso)
    assert Membership.objects.get(user=bob, team=team).role == Role.MEMBER


def test_a_group_removal_closes_the_members_open_sockets(sso, team, someone, monkeypatch):
    revoked: list[tuple[int, str]] = []
    from webapp.workspaces import services

    sso.user = {**sso.user, "groups": ["designers"]}
    sso_login(Client(), sso)
    erin = User.objects.get(username="erin")
    real = services.access_revoke
    monkeypatch.setattr(services, "access_revoke",
                        lambda *, user_id, reason: (revoked.append((user_id, reason)), real(user_id=user_id, reason=reason)))
    sso.user = {**sso.user, "groups": []}
    sso_login(Client(), sso)
    assert revoked == [(erin.pk, "removed from the team")]


def test_a_map_to_a_team_that_does_not_exist_grants_nothing(sso, someone, settings):
    settings.ATELIER_OIDC_ROLE_MAP = {"designers": ("Nowhere", "member")}
    sso.user = {**sso.user, "groups": ["designers"]}
    sso_login(Client(), sso)
    assert not Membership.objects.filter(user__username="erin").exists()


@pytest.mark.parametrize("name", ["openid_connect_login", "openid_connect_callback"])
def test_an_outsider_cannot_use_a_provider_that_is_not_configured(name, client_for, mallory):
    url = reverse(name, kwargs={"provider_id": "not-configured"})
    assert client_for(mallory).get(url).status_code == 404
    assert Client().post(url).status_code == 404


def test_an_outsider_callback_without_a_login_of_theirs_signs_nobody_in(client_for, mallory, someone):
    client = Client()
    url = reverse("openid_connect_callback", kwargs={"provider_id": PROVIDER_ID})
    response = client.get(url, {"code": "stolen", "state": "someone-elses"})
    assert FAILED in response.content and _signed_in(client) is None


def test_the_settings_name_the_field_that_is_wrong():
    with pytest.raises(ImproperlyConfigured, match="ATELIER_OIDC_PROVIDERS is not valid JSON"):
        oidc_providers_setting("{nope")
    with pytest.raises(ImproperlyConfigured, match=r"ATELIER_OIDC_PROVIDERS\[0\] needs a text 'issuer'"):
        oidc_providers_setting('[{"name": "Acme", "client_id": "c", "secret": "s"}]')
    with pytest.raises(ImproperlyConfigured, match=r"ATELIER_OIDC_PROVIDERS\[0\] 'issuer' must be an https://"):
        oidc_providers_setting('[{"name": "A", "issuer": "http://id.example", "client_id": "c", "secret": "s"}]')
    with pytest.raises(ImproperlyConfigured, match=r"ATELIER_OIDC_ROLE_MAP\['g'\]"):
        oidc_role_map_setting('{"g": ["Acme", "emperor"]}')
    app = oidc_providers_setting('[{"name": "Acme SSO", "issuer": "https://id.example/", "client_id": "c", '
                                 '"secret": "s"}]')[0]
    assert app["provider_id"] == "acme-sso" and app["settings"]["server_url"] == "https://id.example"
    assert oidc_role_map_setting('{"g": ["Acme", "admin"]}') == {"g": ("Acme", "admin")}


def test_single_sign_on_asks_an_account_with_two_factor_for_its_code_then_maps_the_groups(sso, team, alice,
                                                                                         settings):
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    secret = generate_totp_secret()
    Authenticator.objects.create(user=alice, type=Authenticator.Type.TOTP, data={"secret": secret})
    studio_b = TeamFactory(name="Studio B")
    settings.ATELIER_OIDC_ROLE_MAP = {**ROLE_MAP, "b-team": ("Studio B", "member")}
    sso.user = {**sso.user, "email": alice.email, "groups": ["b-team"]}
    client = Client()
    response = sso_login(client, sso)
    assert response["Location"] == reverse("mfa_authenticate") and _signed_in(client) is None
    assert not Membership.objects.filter(user=alice, team=studio_b).exists()
    client.post(reverse("mfa_authenticate"), {"code": format_hotp_value(hotp_value(secret, next(
        yield_hotp_counters_from_time())))})
    assert _signed_in(client) == alice
    assert Membership.objects.get(user=alice, team=studio_b).role == Role.MEMBER


def test_settings_read_the_providers_and_the_role_map_from_the_environment(monkeypatch):
    import runpy

    from tests.helpers import ROOT

    def built(**env: str) -> dict:
        for name in ("ATELIER_OIDC_PROVIDERS", "ATELIER_OIDC_ROLE_MAP"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(ROOT / "webapp" / "settings.py"))

    assert built()["SOCIALACCOUNT_PROVIDERS"]["openid_connect"]["APPS"] == []
    configured = built(ATELIER_OIDC_PROVIDERS=json.dumps([{"name": "Acme SSO", "issuer": "https://id.example",
                                                          "client_id": "c", "secret": "s"}]),
                       ATELIER_OIDC_ROLE_MAP='{"design-leads": ["Acme", "admin"]}')
    (app,) = configured["SOCIALACCOUNT_PROVIDERS"]["openid_connect"]["APPS"]
    assert (app["provider_id"], app["client_id"], app["settings"]["server_url"]) == ("acme-sso", "c", "https://id.example")
    assert configured["ATELIER_OIDC_ROLE_MAP"] == {"design-leads": ("Acme", "admin")}
    # The login form's redirect to the provider is allowed by the CSP (form-action), and only it.
    assert configured["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["form-action"][1:] == ["https://id.example"]
    assert built()["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["form-action"] == ["'self'"]
    with pytest.raises(ImproperlyConfigured, match=r"ATELIER_OIDC_PROVIDERS\[0\] needs a text 'secret'"):
        built(ATELIER_OIDC_PROVIDERS='[{"name": "A", "issuer": "https://id.example", "client_id": "c"}]')


def test_a_taken_username_joins_nobody_s_account_the_new_one_gets_another(client, sso, alice):
    sso.user = {**sso.user, "preferred_username": "alice"}
    sso_login(client, sso)
    erin = _signed_in(client)
    assert erin is not None and erin != alice and erin.username != "alice"
    assert erin.email == "erin@example.com" and not SocialAccount.objects.filter(user=alice).exists()


def test_a_deactivated_account_cannot_sign_in_by_single_sign_on(client, sso, alice):
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    sso.user = {**sso.user, "email": alice.email}
    sso_login(Client(), sso)  # linked once
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    response = sso_login(client, sso)
    assert _signed_in(client) is None
    assert response["Location"] == reverse("account_inactive")


def test_the_connections_page_lists_the_linked_provider(client, sso, someone):
    sso_login(client, sso)
    page = client.get(reverse("socialaccount_connections"))
    assert page.status_code == 200 and b"Acme SSO" in page.content


def _invite(team, alice, role=Role.VIEWER):
    from webapp.workspaces import services

    return services.invite_create(actor=Membership.objects.get(team=team, user=alice), role=role)


def test_with_invite_only_sign_up_the_opened_invite_is_spent_on_the_new_account(client, sso, team, alice, settings):
    settings.ATELIER_SIGNUP = "invite"
    invite = _invite(team, alice)
    client.get(invite.get_absolute_url())  # the newcomer opens their invite link, then signs in by SSO
    sso_login(client, sso)
    erin = _signed_in(client)
    assert erin.username == "erin"
    membership = Membership.objects.get(user=erin, team=team)
    assert membership.role == Role.VIEWER and not membership.granted_by_sso
    invite.refresh_from_db()
    assert invite.accepted_by == erin
    # The link is used up: the next visitor who opened it gets no account by single sign-on either.
    stranger = Client()
    stranger.get(invite.get_absolute_url())
    sso.user = {**sso.user, "sub": "u-2", "email": "eve@example.com", "preferred_username": "eve"}
    sso_login(stranger, sso)
    assert _signed_in(stranger) is None and not User.objects.filter(email="eve@example.com").exists()


def test_with_invite_only_sign_up_a_newcomer_without_an_invite_is_refused(client, sso, alice, settings):
    settings.ATELIER_SIGNUP = "invite"
    response = sso_login(client, sso)
    assert _signed_in(client) is None and not User.objects.filter(username="erin").exists()
    assert b"closed" in response.content.lower() or b"invit" in response.content.lower()


def test_a_get_of_the_sign_in_link_only_asks_to_continue_with_a_form_that_posts(client, sso):
    """A link (an <img>, a crafted page) cannot start a sign-in: GET shows a form that posts."""
    page = client.get(reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID}))
    assert page.status_code == 200 and b'method="post"' in page.content and b"Acme SSO" in page.content

"""Issue 20, point 4, in a real browser: "Sign in with Acme SSO" on daphne, consent at a real OIDC provider
(tests/oidc_provider.py), the callback, and the membership the group grants."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.factories import TeamFactory, UserFactory
from tests.helpers import ROOT, process_stop
from tests.oidc_provider import OidcProvider
from webapp.workspaces.models import Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def sso_site(redis_server, django_db_setup) -> Iterator[tuple[str, OidcProvider]]:
    """daphne on the test database with ATELIER_OIDC_PROVIDERS naming the test provider (as asgi_server
    does, with the two settings more), and the provider."""
    from django.db import connection

    from webapp.core.embedded_redis import free_port

    provider = OidcProvider().start()
    port = free_port()
    env = {**os.environ, "ATELIER_DATABASE_NAME": str(connection.settings_dict["NAME"]), "PYTHONUNBUFFERED": "1",
           "ATELIER_HOST": "127.0.0.1", "ATELIER_PORT": str(port), "NO_PROXY": "127.0.0.1",
           "ATELIER_OIDC_PROVIDERS": json.dumps([provider.app_setting()]),
           "ATELIER_OIDC_ROLE_MAP": json.dumps({"design-leads": ["Acme", "admin"]})}
    env.pop("CSRF_TRUSTED_ORIGINS", None)
    log = open(settings.VAR_DIR / "asgi-oidc.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                "webapp.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "daphne exited early; see var/asgi-oidc.log"
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "daphne did not answer; see var/asgi-oidc.log"
            time.sleep(0.2)
        yield base_url, provider
    finally:
        process_stop(process, timeout=15)
        log.close()
        provider.stop()


def test_a_person_signs_in_with_the_identity_provider_and_joins_the_team_their_group_maps_to(sso_site, new_page):
    base_url, provider = sso_site
    UserFactory(username="admin0")  # the site's first account exists: sign-up is open to others
    acme = TeamFactory(name="Acme")
    provider.user = {"sub": "u-77", "email": "erin@example.com", "email_verified": True,
                     "preferred_username": "erin", "groups": ["design-leads"]}
    page = new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_role("button", name="Sign in with Acme SSO").click()
    page.wait_for_url(f"{provider.issuer}/authorize?*")  # the provider's consent page
    assert page.get_by_text("Sign in to Atelier as erin@example.com?").is_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{base_url}/")
    assert page.get_by_role("button", name="Log out").is_visible()
    assert page.get_by_role("heading", name="Acme").is_visible()  # the dashboard lists the team
    membership = Membership.objects.get(user__username="erin", team=acme)
    assert membership.role == Role.ADMIN and membership.granted_by_sso

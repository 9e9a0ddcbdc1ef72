"""Server time of a single sign-on (OIDC) login against a password login (issue 20: at most 50 ms more).
Runs Django in-process (the test client: the whole middleware stack) on a temporary SQLite database with the
real argon2 hasher, and the test suite's OIDC provider (tests/oidc_provider.py) on a local port. An OIDC
login is Atelier's two requests: the button's POST (discovery, the redirect) and the callback (the token
exchange, userinfo, the ID token's checks, the group map); the provider's own time inside them is counted
too, so the figure is an upper bound on Atelier's share.

    .venv/bin/python bench/oidc_login_server_time.py [--rounds 15]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery staple"  # noqa: S105 - the bench's own throwaway accounts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    from tests.oidc_provider import OidcProvider

    provider = OidcProvider().start()
    folder = tempfile.mkdtemp(prefix="atelier-bench-oidc-")
    os.environ.update(ATELIER_VAR_DIR=folder, ATELIER_SQLITE_PATH=str(Path(folder) / "db.sqlite3"),
                      DJANGO_SETTINGS_MODULE="webapp.settings", ALLOWED_HOSTS="testserver", NO_PROXY="127.0.0.1",
                      ATELIER_OIDC_PROVIDERS=json.dumps([provider.app_setting()]),
                      ATELIER_OIDC_ROLE_MAP=json.dumps({"design-leads": ["Acme", "admin"]}))
    import django

    django.setup()
    import requests
    from django.core.management import call_command
    from django.test import Client

    from webapp.accounts.models import User
    from webapp.workspaces.models import Membership, Team

    call_command("migrate", verbosity=0)
    User.objects.create_user(username="plain", email="plain@example.com", password=PASSWORD)
    Team.objects.create(name="Acme")
    provider.user = {"sub": "u-1", "email": "erin@example.com", "email_verified": True,
                     "preferred_username": "erin", "groups": ["design-leads"]}

    def sso_login() -> float:
        client = Client()
        start = time.perf_counter()
        redirect = client.post("/accounts/oidc/acme-sso/login/")
        took = time.perf_counter() - start
        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect["Location"]).query).items()}
        back = requests.post(f"{provider.issuer}/authorize", data=query, allow_redirects=False, timeout=10)
        callback = urlsplit(back.headers["Location"])
        start = time.perf_counter()
        response = client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()})
        took += time.perf_counter() - start
        assert response.status_code == 302 and response["Location"] == "/", (response.status_code, response.content)
        return took

    sso_login()  # the first sign-on makes the account and its membership: the rounds are returning logins
    assert Membership.objects.filter(user__username="erin", team__name="Acme", role="admin").exists()
    password_only, sso = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        response = Client().post("/accounts/login/", {"login": "plain", "password": PASSWORD})
        password_only.append(time.perf_counter() - start)
        assert response.status_code == 302, response.status_code
        sso.append(sso_login())
    provider.stop()
    plain, oidc = (statistics.median(x) * 1000 for x in (password_only, sso))
    print(f"login server time, median of {args.rounds} (ms): password {plain:.1f}, OIDC {oidc:.1f}")
    print(f"OIDC adds {oidc - plain:.1f} ms ({oidc / plain:.2f}x a password login)")
    print(json.dumps({"bench": "oidc_login_server_time", "rounds": args.rounds, "password_ms": round(plain, 1),
                      "oidc_ms": round(oidc, 1), "added_ms": round(oidc - plain, 1),
                      "ratio": round(oidc / plain, 3)}))


if __name__ == "__main__":
    main()

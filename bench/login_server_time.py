"""Server time of a login: password alone, and password then an authenticator code (issue 20: two-factor
adds at most 50 ms). Runs Django in-process (the test client: the whole middleware stack, no network)
on a temporary SQLite database, with the real argon2 hasher.

    .venv/bin/python bench/login_server_time.py [--rounds 15]
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "correct horse battery staple"  # noqa: S105 - the bench's own throwaway accounts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="atelier-bench-login-")
    os.environ.update(ATELIER_VAR_DIR=folder, ATELIER_SQLITE_PATH=str(Path(folder) / "db.sqlite3"),
                      DJANGO_SETTINGS_MODULE="webapp.settings", ALLOWED_HOSTS="testserver")
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client

    from webapp.accounts.models import User

    call_command("migrate", verbosity=0)
    User.objects.create_user(username="plain", email="plain@example.com", password=PASSWORD)
    second = User.objects.create_user(username="second", email="second@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=second, email=second.email, primary=True, verified=True)
    secret = generate_totp_secret()
    TOTP.activate(second, secret)

    def timed(client: Client, path: str, data: dict) -> tuple[float, int, str]:
        start = time.perf_counter()
        response = client.post(path, data)
        return time.perf_counter() - start, response.status_code, response.get("Location", "")

    password_only, with_totp, code_step, password_step = [], [], [], []
    for _ in range(args.rounds):
        cache.clear()  # a code works once: each round is a fresh window, as a day of logins would be
        took, status, location = timed(Client(), "/accounts/login/", {"login": "plain", "password": PASSWORD})
        assert (status, location) == (302, "/"), (status, location)
        password_only.append(took)
        client = Client()
        first, status, location = timed(client, "/accounts/login/", {"login": "second", "password": PASSWORD})
        assert location == "/accounts/2fa/authenticate/", location
        code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
        then, status, location = timed(client, "/accounts/2fa/authenticate/", {"code": code})
        assert (status, location) == (302, "/"), (status, location)
        with_totp.append(first + then)
        code_step.append(then)
        password_step.append(first)
    plain, totp, step, first_step = (statistics.median(x) * 1000
                                     for x in (password_only, with_totp, code_step, password_step))
    print(f"login server time, median of {args.rounds} (ms): password {plain:.1f}, password + TOTP {totp:.1f} "
          f"(its password step {first_step:.1f}, its code step {step:.1f})")
    print(f"two-factor adds {totp - plain:.1f} ms ({totp / plain:.2f}x a password login)")
    print(json.dumps({"bench": "login_server_time", "rounds": args.rounds, "password_ms": round(plain, 1),
                      "password_totp_ms": round(totp, 1), "code_step_ms": round(step, 1),
                      "added_ms": round(totp - plain, 1), "ratio": round(totp / plain, 3)}))


if __name__ == "__main__":
    main()

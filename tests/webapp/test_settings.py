from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTPS_ONLY_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


def _check_deploy(extra_env: dict[str, str]) -> str:
    # A deployment has none of the test suite's own switches (the browser tests set one).
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(extra_env)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return result.stdout + result.stderr


def test_check_deploy_reports_only_https_settings_with_defaults(tmp_path):
    output = _check_deploy({"ATELIER_VAR_DIR": str(tmp_path)})
    reported = {token.strip("():") for token in output.split() if token.startswith("(security.")}
    assert reported == HTTPS_ONLY_WARNINGS, output
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_https_settings_are_one_env_var_each(tmp_path):
    output = _check_deploy(
        {
            "ATELIER_VAR_DIR": str(tmp_path),
            "SECURE_HSTS_SECONDS": "3600",
            "SECURE_SSL_REDIRECT": "1",
            "SESSION_COOKIE_SECURE": "1",
            "CSRF_COOKIE_SECURE": "1",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
            "SECURE_HSTS_PRELOAD": "1",
        }
    )
    assert "no issues" in output, output


def test_secret_key_is_generated_once_and_kept(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {**os.environ, "ATELIER_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    env.pop("SECRET_KEY", None)
    first = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    second = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    assert first == second and len(first.strip()) > 50

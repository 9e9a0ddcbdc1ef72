"""Issue 20: accounts made before allauth keep working after the upgrade."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT


def _stage(stage: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "tests.webapp.accounts.release_db", stage], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{stage} failed:\n{done.stderr[-4000:]}"
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def test_an_account_from_the_last_release_logs_in_after_the_migrations(tmp_path):
    env = {**os.environ, "ATELIER_VAR_DIR": str(tmp_path), "ATELIER_DATABASE_NAME": str(tmp_path / "release.sqlite3"),
           "ALLOWED_HOSTS": "testserver", "ATELIER_SETUP_TOKEN_REQUIRED": "1"}
    env.pop("DATABASE_URL", None)
    before = json.loads(_stage("release", env))
    assert before["allauth_tables"] == []  # the release had no allauth
    _stage("upgrade", env)
    results = json.loads(_stage("login", env))
    # The address the release kept on the user row became allauth's (primary, not yet verified).
    assert results.pop("addresses") == [["olivia@example.com", True, False]]
    for how, result in results.items():
        assert result["status"] == 302 and result["location"] == "/", f"{how}: {result}"
        assert result["dashboard"] == 200 and result["team_shown"], f"{how}: {result}"

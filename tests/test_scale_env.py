"""``make test-scale`` refuses to run, naming the service, when one is missing (needs no service itself)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT
from webapp.core.embedded_redis import free_port


def _launch(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.scale_env", "--collect-only", "-q"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_test_scale_refuses_without_postgresql():
    done = _launch(ATELIER_SCALE_DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/test")
    assert done.returncode == 2
    assert "make test-scale refuses to run: PostgreSQL does not answer" in done.stderr


def test_test_scale_refuses_without_redis(monkeypatch, capsys):
    from tests import scale_env

    monkeypatch.setattr(scale_env, "check_postgres", lambda url: None)  # only Redis is missing here
    monkeypatch.setenv("ATELIER_SCALE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/11")
    assert scale_env.main(["--collect-only"]) == 2
    assert "make test-scale refuses to run: Redis does not answer" in capsys.readouterr().err

"""Shared fixtures: the personas, and the real stack (embedded Redis, a Celery worker).

Personas: alice owns team "Acme", bob is a member of it, carol a viewer;
mallory owns another team and must never see Acme's data.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory
from webapp.workspaces.models import Role

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def carol(db):
    return UserFactory(username="carol")


@pytest.fixture
def mallory(db):
    return UserFactory(username="mallory")


@pytest.fixture
def team(alice, bob, carol):
    team = TeamFactory(name="Acme")
    MembershipFactory(team=team, user=alice, role=Role.OWNER)
    MembershipFactory(team=team, user=bob, role=Role.MEMBER)
    MembershipFactory(team=team, user=carol, role=Role.VIEWER)
    return team


@pytest.fixture
def other_team(mallory):
    team = TeamFactory(name="Umbrella")
    MembershipFactory(team=team, user=mallory, role=Role.OWNER)
    return team


@pytest.fixture
def project(team, alice):
    return ProjectFactory(team=team, name="Launch", created_by=alice)


@pytest.fixture
def other_project(other_team, mallory):
    return ProjectFactory(team=other_team, name="Secret", created_by=mallory)


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def client_for():
    """``client_for(alice)`` gives a test client logged in as that persona."""
    return _client_for


# --- The real stack -------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """An embedded Redis (the same binary ``make run`` uses) on the suite's own port."""
    port = os.environ.get("ATELIER_TEST_REDIS_PORT")
    if not port:  # ATELIER_TEST_REDIS_URL points at an external server
        yield settings.REDIS_URL
        return
    from webapp.core import embedded_redis

    process = embedded_redis.start(
        port=int(port), data_dir=settings.VAR_DIR / "redis", persist=False,
        password=os.environ.get("ATELIER_TEST_REDIS_PASSWORD"),
    )
    try:
        yield settings.REDIS_URL
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def celery_worker(redis_server, django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` process on every queue, using the test database.

    Tests that hand rows to it must use ``django_db(transaction=True)`` so the
    worker sees committed data.
    """
    from django.db import connection

    from webapp.celery import app

    env = dict(os.environ)
    env["ATELIER_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONUNBUFFERED"] = "1"
    log_path = settings.VAR_DIR / "worker.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "default,text,image",
         "-c", "1", "-n", f"test-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited early; see {log_path}")
            replies = app.control.ping(timeout=1.0)
            if replies:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Celery worker did not answer; see {log_path}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def asgi_server(redis_server, django_db_setup) -> Iterator[str]:
    """The real ASGI server (daphne: HTTP and websockets) on a free port, on the test database.

    Yields its base URL. Tests that use it need ``django_db(transaction=True)``.
    """
    from django.db import connection

    from webapp.core.embedded_redis import free_port

    port = free_port()
    env = dict(os.environ)
    env["ATELIER_DATABASE_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONUNBUFFERED"] = "1"
    # The trusted origins (CSRF and websockets) derive from where daphne listens.
    env["ATELIER_HOST"], env["ATELIER_PORT"] = "127.0.0.1", str(port)
    env.pop("CSRF_TRUSTED_ORIGINS", None)
    log_path = settings.VAR_DIR / "asgi.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    import urllib.request

    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited early; see {log_path}")
            try:
                with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"daphne did not answer; see {log_path}")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API leaves an event loop running in the
    main thread, and every asyncio test after it (consumers, channel layer) would fail."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)

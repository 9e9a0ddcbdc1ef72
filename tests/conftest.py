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

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory
from tests.helpers import ROOT, SentTasks, worker_command
from webapp.workspaces.models import Role

settings.PASSWORD_HASHERS = ["tests.helpers.QuickArgon2PasswordHasher", *settings.PASSWORD_HASHERS]


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


@pytest.fixture
def no_enqueue(monkeypatch) -> SentTasks:
    """Catches every task sent (``apply_async``, ``delay``, ``send_task`` by name) instead of
    handing it to a broker; the list of ``SentTask`` it returns grows as tasks are sent."""
    from webapp.celery import app

    sent = SentTasks(app)
    monkeypatch.setattr(app, "send_task", sent.record)
    return sent


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
    """A real ``celery worker`` process on every queue (``python -m webapp.worker all``), using
    the test database: one process keeps the suite fast; ``make run`` starts one per kind.

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
        worker_command("all", "-n", f"test-{os.getpid()}@%h"), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
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


# Fixtures that make a test slow, and the markers they give it (`make test-fast` leaves
# these out). A worker preloads and runs the real default models.
SLOW_FIXTURES = {
    "celery_worker": ("stack", "model"),
    "asgi_server": ("stack",),
    "browser": ("browser",),
    "new_page": ("browser",),
}


def pytest_collection_modifyitems(config, items):
    """Marks tests by the slow fixtures they use, then sorts browser tests last: Playwright's
    sync API leaves an event loop running in the main thread, and every asyncio test after
    it (consumers, channel layer) would fail."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, markers in SLOW_FIXTURES.items():
            if fixture in fixtures:
                for marker in markers:
                    item.add_marker(marker)
    # The fault tests (a broker restarted, a disk filled, sockets starved) go after every other
    # in-process asyncio test, so nothing they leave behind can reach one; browser tests last.
    items.sort(key=lambda item: (item.get_closest_marker("browser") is not None,
                                 "/reliability/" in str(item.path).replace("\\", "/")))

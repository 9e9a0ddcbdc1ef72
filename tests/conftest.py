"""Shared fixtures: the personas, and the real stack (embedded Redis, a Celery worker).

Personas: alice owns team "Acme", bob is a member of it, carol a viewer;
mallory owns another team and must never see Acme's data.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory, member_make
from tests.helpers import (
    ROOT,
    SentTasks,
    finish_job,
    membership,
    process_stop,
    short_settings,
    tiny_request,
    worker_answers,
    worker_running,
)
from webapp.workspaces.models import Role

settings.PASSWORD_HASHERS = ["tests.helpers.QuickArgon2PasswordHasher", *settings.PASSWORD_HASHERS]


def _persona(username: str) -> Any:
    @pytest.fixture(name=username)
    def persona(db: Any) -> Any:
        return UserFactory(username=username)

    return persona


alice, bob, carol, mallory = map(_persona, ("alice", "bob", "carol", "mallory"))


@pytest.fixture
def team(alice, bob, carol):
    team = TeamFactory(name="Acme")
    MembershipFactory(team=team, user=alice, role=Role.OWNER)
    MembershipFactory(team=team, user=bob, role=Role.MEMBER)
    MembershipFactory(team=team, user=carol, role=Role.VIEWER)
    return team


@pytest.fixture
def dave(team):
    """A second member of Acme (the tests remove or rely on him)."""
    return member_make(team, "dave", Role.MEMBER)


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
    """The one way a test keeps tasks from the broker: catches every task sent (``apply_async``,
    ``delay``, ``send_task`` by name, the job lifecycle's ``task_send``); the list of ``SentTask``
    it returns grows as tasks are sent (``.ids()``: the row ids)."""
    from webapp.celery import app

    sent = SentTasks(app)
    monkeypatch.setattr(app, "send_task", sent.record)
    return sent


# --- Things in Acme's project ------------------------------------------------------


@pytest.fixture
def conversation(project, alice):
    """Alice's conversation in the project, with short replies."""
    from webapp.chat import services

    return services.conversation_create(project=project, actor=membership(alice, project),
                                        reply_settings=short_settings())


@pytest.fixture
def make_image(no_enqueue):
    """``make_image(project=..., author=...)``: an image made through the studio's services (no engine)."""
    from webapp.studio import services

    def factory(*, project, author, **overrides: Any) -> Any:
        job = services.job_create(project=project, actor=membership(author, project),
                                  request=tiny_request(**overrides))
        return finish_job(job)

    return factory


@pytest.fixture
def image(make_image, project, bob):
    """A 32 by 32 image that bob made."""
    return make_image(project=project, author=bob)


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
        process_stop(process, timeout=10)


@pytest.fixture(scope="session")
def celery_worker(redis_server, django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` process on every queue (``python -m webapp.worker all``), using
    the test database: one process keeps the suite fast; ``make run`` starts one per kind.

    Tests that hand rows to it must use ``django_db(transaction=True)`` so the
    worker sees committed data.
    """
    with worker_running("all", "-n", f"test-{os.getpid()}@%h", log="worker.log", ready=worker_answers()) as process:
        yield process


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
        process_stop(process, timeout=15)
        log.close()


# --- A real browser ----------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium_path() -> str:
    path = os.environ.get("ATELIER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium through Playwright, one per test module: Playwright's sync API keeps an event
    loop running in the main thread while it lives, which later asyncio tests must not see."""
    from playwright.sync_api import sync_playwright

    # With that loop in the thread, Django would refuse the test's own (synchronous) ORM calls.
    allowed = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_chromium_path(), headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if allowed is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = allowed


@pytest.fixture
def new_page(browser):
    """``new_page()`` opens a page in a fresh browser context (its own cookies)."""
    contexts = []

    def factory():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


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


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets its own channel layer. channels caches one per process, and channels_redis keeps
    an asyncio lock per consumer prefix in it: a test whose event loop ended while a receive held that
    lock left the next test's socket test failing with "bound to a different event loop" (seen once
    in a fresh-clone run)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """allauth counts sign-ups, resets and confirmation mails in the cache (per address and per
    address family): each test starts with none counted, as a fresh minute would."""
    from django.core.cache import cache

    cache.clear()
    yield


# --- The tiny in-code chat model (about a millisecond a token), for tests that decode in this process
# (chat, usage); the real stack tests use the real default model in a real worker.

TINY_CHAT = "tiny-chat"


@pytest.fixture(scope="session")
def tiny_model_folder() -> Any:
    from pathlib import Path

    from generation.text.testing import build_tiny_chat_model

    folder = Path(settings.VAR_DIR) / "tiny-chat-model"
    if not (folder / "config.json").exists():
        build_tiny_chat_model(folder, seed=0, context_length=512)
    return folder


@pytest.fixture
def tiny_model(tiny_model_folder, monkeypatch) -> str:
    """Registers the tiny chat model and returns its name."""
    from generation.text.testing import tiny_model_entry

    monkeypatch.setenv("ATELIER_TEXT_MODELS", tiny_model_entry(TINY_CHAT, tiny_model_folder, context_length=512))
    return TINY_CHAT

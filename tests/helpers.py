"""Helpers the tests import (fixtures live in conftest files; helpers live here)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.hashers import Argon2PasswordHasher

if TYPE_CHECKING:
    from generation.image import ImageRequest, ImageResult
    from webapp.chat.params import ReplySettings
    from webapp.studio.models import Job

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class QuickArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 at its lowest cost, for the suite only. Each persona's password cost 0.37 s
    of CPU with the real parameters (100 MiB, 8 lanes), most of `make test-fast`'s time.
    The hash still reads ``argon2$...`` and carries its parameters, so the real hasher
    in daphne or a worker checks it too."""

    time_cost = 1
    memory_cost = 64
    parallelism = 1


def worker_command(kind: str, *extra: str) -> list[str]:
    """The command that starts a Celery worker of ``kind`` through the launcher (``webapp.worker``)."""
    return [sys.executable, "-m", "webapp.worker", kind, *extra]


def text_worker_start(*, queue: str, log_name: str, env: dict[str, str] | None = None, timeout: float = 240) -> Any:
    """A ``python -m webapp.worker text`` of its own on ``queue`` (the test database, the suite's Redis),
    once it answers a ping; the caller ends it. Tasks reach it when a test routes them to ``queue``."""
    import os
    import subprocess

    from django.conf import settings
    from django.db import connection

    from webapp.celery import app

    full_env = dict(os.environ, ATELIER_DATABASE_NAME=str(connection.settings_dict["NAME"]), PYTHONUNBUFFERED="1",
                    **(env or {}))
    log_path = settings.VAR_DIR / log_name
    log = open(log_path, "w")  # noqa: SIM115 - the process owns it until it ends
    process = subprocess.Popen(worker_command("text", "-Q", queue, "-n", f"{queue}@%h"), cwd=ROOT, env=full_env,
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not any(queue in name for reply in app.control.ping(timeout=1.0) for name in reply):
        if process.poll() is not None:
            raise RuntimeError(f"the text worker exited early; see {log_path}")
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"the text worker did not answer; see {log_path}")
    return process


def process_end(process: Any) -> None:
    """Terminate ``process`` (kill it after 30 s) unless it already ended."""
    import subprocess

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


# --- chat -----------------------------------------------------------------------


def short_settings(**params: Any) -> ReplySettings:
    """Reply settings with short replies (8 tokens) unless ``params`` say otherwise."""
    from webapp.chat.params import ReplySettings, default_model_name, default_params

    return ReplySettings(
        model_name=params.pop("model_name", default_model_name()),
        system_prompt=params.pop("system_prompt", ""),
        params={**default_params(), "max_new_tokens": 8, **params},
    )


# --- studio ---------------------------------------------------------------------


def tiny_request(**overrides: Any) -> ImageRequest:
    from generation.image import ImageRequest

    params: dict[str, Any] = {"prompt": "a red circle", "steps": 4, "seed": 7, "width": 32, "height": 32}
    params.update(overrides)
    return ImageRequest(**params)


def fake_result(job: Job, *, colours: tuple[str, ...] = ("red",)) -> ImageResult:
    """What the engine would return for ``job``: plain-colour images and the params it used."""
    from PIL import Image

    from generation.image import ImageResult

    params = {**job.params, "model_revision": "abc123", "sampler": "DPM++ 2M"}
    images = tuple(Image.new("RGB", (params["width"], params["height"]), colour) for colour in colours)
    return ImageResult(images=images, params=params, model=job.model_name, model_revision="abc123",
                       elapsed=0.1, seconds_per_step=0.02)


def finished_image_job(*, project: Any, user: Any, via: str = "", colours: tuple[str, ...] = ("red",)) -> Job:
    """A studio job of ``user`` that ran (with ``fake_result``) and stored one asset per colour, files included."""
    from tests.factories import membership_of
    from webapp.studio import services as studio

    job = studio.job_create(project=project, membership=membership_of(user, project.team),
                            request=tiny_request(num_images=len(colours)), via=via)
    studio.job_start(job_id=job.pk, worker="w")
    return studio.job_complete(job=job, result=fake_result(job, colours=colours))


# --- prompt templates ----------------------------------------------------------------

CHAT_BODY = "Write {{count|number:1..5|default:2}} {{tone|select:formal,casual|default:formal}} lines about {{topic}}."


# --- tasks sent instead of enqueued ------------------------------------------------


class SentTask:
    """One task a test intercepted: its name, arguments and routing."""

    def __init__(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        self.name = name
        self.args = list(args or ())
        self.kwargs = dict(kwargs or {})
        self.queue: str | None = options.get("queue")
        self.task_id: str | None = options.get("task_id")

    def __repr__(self) -> str:
        return f"SentTask({self.name!r}, args={self.args!r}, queue={self.queue!r}, task_id={self.task_id!r})"


class SentTasks(list[SentTask]):
    """What ``no_enqueue`` caught, in order. ``send`` hands them to the broker after all."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self._app = app

    def record(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> None:
        self.append(SentTask(name, args, kwargs, **options))

    def ids(self) -> list[Any]:
        """The first argument of every task caught (the row id the task would load)."""
        return [task.args[0] for task in self]

    def ids_and_queues(self) -> list[tuple[Any, str | None]]:
        return [(task.args[0], task.queue) for task in self]

    def send(self, *, queue: str) -> None:
        """Send every caught task, really, to ``queue``, and forget them."""
        send_task = type(self._app).send_task
        for task in self:
            send_task(self._app, task.name, args=task.args, kwargs=task.kwargs, queue=queue, task_id=task.task_id)
        self.clear()


def url_patterns(resolver: Any = None, namespace: str = "", prefix: str = "") -> Iterator[tuple[str, str, dict]]:
    """Every named URL of the URLconf as ``(namespaced name, route, converters)``: the walks
    (outsider tests, the IDOR matrix, CSRF) start here, so a new app's URLs join them all."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from url_patterns(entry, ns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            # A regex route (re_path) has no converters, only named groups.
            params = entry.pattern.converters or dict.fromkeys(entry.pattern.regex.groupindex)
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern), params

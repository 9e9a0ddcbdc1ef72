"""Helpers the tests import (fixtures live in conftest files; helpers live here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.auth.hashers import Argon2PasswordHasher

if TYPE_CHECKING:
    from generation.image import ImageRequest, ImageResult
    from webapp.chat.params import ReplySettings
    from webapp.studio.models import Asset, Job

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


def process_stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Ask ``process`` to stop (SIGTERM), kill it after ``timeout`` s, and reap it."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_answers(name_part: str = "") -> Callable[[], bool]:
    """A readiness check for ``worker_running``: a worker whose node name holds ``name_part`` answered a
    ping through the suite's broker (each call waits up to a second for the answers)."""

    def check() -> bool:
        from webapp.celery import app

        return any(name_part in name for reply in app.control.ping(timeout=1.0) for name in reply)

    return check


@contextmanager
def worker_running(kind: str, *extra: str, log: str | Path, env: Mapping[str, str | None] | None = None,
                   ready: Callable[[], bool] | None = None, ready_timeout: float = 180) -> Iterator[subprocess.Popen]:
    """The one way the tests start a Celery worker: ``python -m webapp.worker kind *extra`` on the test
    database, its output in ``log`` (a name under ``var/``, or a path); stopped and reaped on the way out.

    ``env`` adds to (a value of None: removes from) this process's environment. With ``ready``, waits
    until it returns true (``worker_answers()``), failing early, naming the log, when the worker exits.
    Tests that hand rows to a worker need ``django_db(transaction=True)``, so it sees committed data.
    """
    from django.conf import settings
    from django.db import connection

    full_env = {**os.environ, "ATELIER_DATABASE_NAME": str(connection.settings_dict["NAME"]), "PYTHONUNBUFFERED": "1"}
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    log_path = Path(settings.VAR_DIR) / log
    with open(log_path, "w") as output:
        process = subprocess.Popen(worker_command(kind, *extra), cwd=ROOT, env=full_env, stdout=output,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + ready_timeout
            while ready is not None and not ready():
                if process.poll() is not None:
                    raise RuntimeError(f"the Celery worker exited early; see {log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the Celery worker did not answer; see {log_path}")
            yield process
        finally:
            process_stop(process)


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def membership(user: Any, where: Any) -> Any:
    """``user``'s membership of the team that owns ``where`` (a project, or anything in one: a conversation)."""
    from webapp.workspaces.models import Membership

    project = getattr(where, "project", where)
    return Membership.objects.select_related("team", "user").get(team_id=project.team_id, user=user)


# --- chat -----------------------------------------------------------------------


def short_settings(**params: Any) -> ReplySettings:
    """Reply settings with short replies (8 tokens) unless ``params`` say otherwise."""
    from webapp.chat.params import ReplySettings, default_model_name, default_params

    return ReplySettings(
        model_name=params.pop("model_name", default_model_name()),
        system_prompt=params.pop("system_prompt", ""),
        params={**default_params(), "max_new_tokens": 8, **params},
    )


def chat_send(client: Any, conversation: Any, text: str, *, parent: int | None = None, **fields: Any) -> int:
    """Send ``text`` the way the page does (the composer form, posted over htmx) and return the new reply's id.

    ``fields`` override the conversation's settings (``max_new_tokens=24``); a refused send fails the
    test with the form's errors.
    """
    from django.urls import reverse

    from webapp.chat import selectors
    from webapp.chat.forms import settings_initial
    from webapp.chat.models import Message

    form = {**settings_initial(selectors.conversation_settings(conversation=conversation)), **fields,
            "text": text, "parent": parent}
    if isinstance(form["stop"], list):
        form["stop"] = "\n".join(form["stop"])
    before = Message.objects.filter(conversation=conversation).order_by("-pk").values_list("pk", flat=True).first()
    url = reverse("chat:conversation_send", args=[conversation.project_id, conversation.pk])
    response = client.post(url, {k: "" if v is None else v for k, v in form.items()}, headers={"HX-Request": "true"})
    reply = Message.objects.filter(conversation=conversation, role="assistant", pk__gt=before or 0).order_by("-pk").first()
    if response.status_code != 200 or reply is None:
        errors = getattr(response, "context", None) and response.context.get("composer")
        raise AssertionError(f"the send was refused ({response.status_code}): {getattr(errors, 'errors', '')}")
    return reply.pk


def chat_stop(client: Any, message_id: int, project_id: int) -> None:
    """Stop a reply the way the page's Stop button does (a POST over htmx)."""
    from django.urls import reverse

    response = client.post(reverse("chat:message_stop", args=[project_id, message_id]), headers={"HX-Request": "true"})
    assert response.status_code == 204, response.status_code


# --- sockets -----------------------------------------------------------------------


def session_client(user: Any) -> Any:
    """A test client logged in as ``user`` (its session cookie opens sockets too)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def allowed_origin() -> str:
    """The first origin the settings trust (what a browser on Atelier's own page sends)."""
    from django.conf import settings

    return settings.ATELIER_ORIGINS[0]


def socket_for(path: str, client: Any = None, origin: str | None = "") -> Any:
    """A ``WebsocketCommunicator`` on ``path`` through the whole ASGI stack (origin check, session,
    routing) with ``client``'s session cookie; ``origin=None`` sends no Origin."""
    from channels.testing import WebsocketCommunicator

    from webapp.asgi import application

    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", (origin or allowed_origin()).encode()))
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def chat_socket_path(conversation: Any) -> str:
    return f"/ws/projects/{conversation.project_id}/chat/{conversation.pk}/"


def studio_socket_path(project: Any) -> str:
    return f"/ws/projects/{project.pk}/studio/"


def reviews_socket_path(project: Any) -> str:
    return f"/ws/projects/{project.pk}/reviews/"


# --- studio ---------------------------------------------------------------------


def tiny_request(**overrides: Any) -> ImageRequest:
    from generation.image import ImageRequest

    params: dict[str, Any] = {"prompt": "a red circle", "steps": 4, "seed": 7, "width": 32, "height": 32}
    params.update(overrides)
    return ImageRequest(**params)


def finish_job(job: Job, *, colour: str = "red") -> Asset:
    """Run ``job`` as a worker would, with a plain-colour image instead of the engine's."""
    from webapp.studio import services

    started = services.job_start(job_id=job.pk, worker="w1")
    assert started is not None
    return services.job_complete(job=started, result=fake_result(started, colours=(colour,))).assets.get()


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

    job = studio.job_create(project=project, actor=membership_of(user, project.team),
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


# --- api --------------------------------------------------------------------------


def make_key(user: Any, project: Any, name: str = "script", **kwargs: Any) -> Any:
    """An API key of ``user`` in ``project``, made through the service (``.secret`` is shown once)."""
    from webapp.api import services
    from webapp.workspaces.models import Membership

    actor = Membership.objects.get(team_id=project.team_id, user=user)
    return services.key_create(actor=actor, project=project, name=name, **kwargs)


class ApiClient:
    """Django's test client with ``Authorization: Bearer <secret>`` on every request."""

    def __init__(self, secret: str | None) -> None:
        from django.test import Client

        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None, content_type: str = "application/json",
             **kwargs: Any) -> Any:
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type=content_type,
                                headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


def url_patterns(resolver: Any = None, namespace: str = "", prefix: str = "",
                 outer: dict | None = None) -> Iterator[tuple[str, str, dict]]:
    """Every named URL of the URLconf as ``(namespaced name, route, converters)``: the walks
    (outsider tests, the IDOR matrix, CSRF) start here, so a new app's URLs join them all.
    ``outer``: the converters of the includes above (``path("keys/<int:pk>/", include(...))``)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            # A regex include (allauth's OIDC ``^(?P<provider_id>[^/]+)/``) has named groups, not converters.
            own = getattr(entry.pattern, "converters", None) or dict.fromkeys(entry.pattern.regex.groupindex)
            inherited = {**(outer or {}), **own}
            yield from url_patterns(entry, ns, prefix + str(entry.pattern), inherited)
        elif isinstance(entry, URLPattern) and entry.name:
            # A regex route (re_path) has no converters, only named groups.
            params = entry.pattern.converters or dict.fromkeys(entry.pattern.regex.groupindex)
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern), {**(outer or {}), **params}


def principal_args(principal: Any) -> dict[str, Any]:
    """The keyword arguments an API service takes for a bearer key's ``Principal``: its member and its key."""
    return {"actor": principal.membership, "key": principal.key}


@contextmanager
def text_worker_own_queue(name: str, *, env: Mapping[str, str | None] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A text worker (``worker_running``) on a queue of its own, ``text-<name>-<pid>``, so no other test's
    worker takes the jobs a test routes there (``text_queue_route``); yields the queue and the process."""
    queue = f"text-{name}-{os.getpid()}"
    with worker_running("text", "-Q", queue, "-n", f"{queue}@%h", log=f"text-{name}-worker.log", env=env,
                        ready=worker_answers(queue), ready_timeout=240) as process:
        yield queue, process


def text_queue_route(monkeypatch: Any, target: str) -> None:
    """Send the tasks meant for the ``text`` queue to ``target`` for the rest of the test."""
    from webapp.core import jobs

    sent = jobs.task_send

    def send(name: str, *, args: list[Any], queue: str, task_id: str | None = None) -> None:
        sent(name, args=args, queue=target if queue == "text" else queue, task_id=task_id)

    monkeypatch.setattr(jobs, "task_send", send)

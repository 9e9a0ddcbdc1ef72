"""Finding 8: error details and server names do not leave the server.

The attacks: an anonymous caller reads ``/healthz`` while a check fails and learns the exception
text (hosts, paths, users); an API client or a member reads a failed job's or export's
``Type: message``; anyone holding a PNG (an API answer, an approved-set zip) reads the worker's
host name and code version from its text chunks.
"""
from __future__ import annotations

import io
import json
import logging
import re
import socket

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from generation.image import read_png_metadata
from tests.helpers import ApiClient, finished_image_job, make_key, principal_args
from webapp.api import selectors as api_selectors
from webapp.api import services as api_services
from webapp.api.params import chat_spec
from webapp.api.services.text import TEXT_JOB
from webapp.core import jobs as lifecycle
from webapp.studio import lineage

pytestmark = [pytest.mark.django_db]

SECRET = "password=hunter2 at /srv/atelier/internal.py on db-7.internal"
MODEL = "smollm2-135m-instruct"


def _error_id(text: str) -> str:
    match = re.search(r"error id ([0-9a-f]{8})", text)
    assert match, text
    return match.group(1)


def _logged(caplog, error_id: str) -> str:
    return "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records if error_id in r.getMessage())


# --- /healthz ---------------------------------------------------------------------------


def test_anonymous_healthz_says_up_or_down_and_nothing_else(client, settings, redis_server):
    assert client.get(reverse("core:healthz")).json() == {"status": "ok"}
    settings.REDIS_URL = "redis://:hunter2@db-7.internal.invalid:1/0"
    response = client.get(reverse("core:healthz"))
    assert response.status_code == 503
    assert response.json() == {"status": "error"}
    assert b"db-7" not in response.content and b"Error" not in response.content


def test_a_logged_in_member_is_anonymous_to_healthz(client, bob, settings, redis_server):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    client.force_login(bob)
    assert client.get(reverse("core:healthz")).json() == {"status": "error"}


def test_the_metrics_token_holder_still_sees_which_check_failed(client, settings, redis_server):
    settings.METRICS_TOKEN = "scrape"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    body = client.get(reverse("core:healthz"), headers={"Authorization": "Bearer scrape"}).json()
    assert body["status"] == "error" and body["redis"]["ok"] is False and body["redis"]["error"]


# --- API and export failures --------------------------------------------------------------


@pytest.fixture
def failed_call(project, bob, redis_server, no_enqueue, django_capture_on_commit_callbacks, monkeypatch):
    """A chat request whose job failed in the worker with an exception's text as its reason."""
    key = make_key(bob, project)
    principal = api_selectors.key_authenticate(authorization=f"Bearer {key.secret}")
    spec = chat_spec({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    with django_capture_on_commit_callbacks(execute=True):
        jobs = api_services.text_call_create(**principal_args(principal), spec=spec, kind="chat")
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.job_fail(kind=TEXT_JOB, job_id=jobs[0].pk, reason=f"RuntimeError: {SECRET}")
    # The view follows these jobs (already failed) instead of making new ones.
    monkeypatch.setattr(api_services, "text_call_create", lambda **kwargs: jobs)
    return ApiClient(key.secret)


def test_a_failed_api_job_answers_a_generic_error_with_an_id(failed_call, caplog):
    with caplog.at_level(logging.ERROR):
        response = failed_call.post("/v1/chat/completions",
                                    {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    assert "hunter2" not in message and "RuntimeError" not in message
    assert SECRET in _logged(caplog, _error_id(message))


def test_a_crashing_api_task_stores_no_exception_text(project, bob, monkeypatch, caplog, no_enqueue):
    from webapp.api import tasks
    from webapp.api.models import TextJob

    job = TextJob.objects.create(project=project, user=bob, call_id="c", kind="chat", model_name=MODEL)

    def boom(**kwargs):
        raise RuntimeError(SECRET)

    monkeypatch.setattr(api_services, "text_job_run", boom)
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError):
        tasks.run_text_job.run(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "hunter2" not in job.reason and "RuntimeError" not in job.reason
    assert SECRET in _logged(caplog, _error_id(job.reason))


def test_a_failed_export_shows_members_a_generic_reason(client_for, project, alice, carol, monkeypatch, caplog,
                                                        no_enqueue):
    from tests.factories import membership_of
    from webapp.reviews import services, tasks

    export = services.export_create(actor=membership_of(alice, project.team), project=project)

    def boom(**kwargs):
        raise OSError(SECRET)

    monkeypatch.setattr(services, "export_build", boom)
    with caplog.at_level(logging.ERROR):
        tasks.build_approved_export.run(export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and "hunter2" not in export.reason and "OSError" not in export.reason
    assert SECRET in _logged(caplog, _error_id(export.reason))
    page = client_for(carol).get(reverse("reviews:export_status", kwargs={"project_id": project.pk,
                                                                         "export_id": export.pk}))
    assert b"hunter2" not in page.content and _error_id(export.reason).encode() in page.content


# --- PNG lineage ----------------------------------------------------------------------------


def _file_params(asset) -> dict:
    with default_storage.open(asset.file.name, "rb") as fh:
        data = fh.read()
    meta = read_png_metadata(io.BytesIO(data))
    return {"params": meta["params"], "text": json.dumps(meta)}


def test_an_image_file_carries_no_host_name_or_code_version(project, bob, no_enqueue):
    asset = finished_image_job(project=project, user=bob).assets.get()
    embedded = _file_params(asset)
    assert "worker_host" not in embedded["params"] and "code_version" not in embedded["params"]
    assert socket.gethostname() not in embedded["text"] and lineage.code_version() not in embedded["text"]
    assert embedded["params"]["seed"] == asset.seed  # the generation parameters stay
    # The lineage stays on the server, in the asset's row.
    assert asset.worker_host == socket.gethostname() and asset.params["worker_host"] == socket.gethostname()


def test_png_lineage_full_embeds_them(project, bob, no_enqueue, settings):
    settings.PNG_LINEAGE = "full"
    asset = finished_image_job(project=project, user=bob).assets.get()
    params = _file_params(asset)["params"]
    assert params["worker_host"] == socket.gethostname() and params["code_version"] == lineage.code_version()

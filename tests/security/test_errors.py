"""Internal exception text never reaches users: they get a generic message and an error id
that is also in the log, next to the detail."""
from __future__ import annotations

import logging
import re

import pytest

from tests.helpers import membership
from webapp.chat import services as chat_services
from webapp.chat.models import Message
from webapp.core.jobs import JobStatus

pytestmark = pytest.mark.django_db


SECRET = "password=hunter2 at /srv/atelier/internal.py"


def _error_id(text: str) -> str:
    match = re.search(r"error id ([0-9a-f]{8})", text)
    assert match, text
    return match.group(1)


@pytest.mark.usefixtures("redis_server")
def test_a_failed_reply_shows_a_generic_message_and_logs_the_detail(conversation, bob, monkeypatch, caplog, no_enqueue):
    import generation.text.engine
    from tests.helpers import short_settings

    def boom(request, should_stop):
        raise RuntimeError(SECRET)
        yield  # pragma: no cover

    monkeypatch.setattr(generation.text.engine, "text_engine", lambda name: None)
    monkeypatch.setattr(generation.text.engine, "generate_text", boom)
    reply = chat_services.message_send(conversation=conversation, actor=membership(bob, conversation), text="hi", parent=None,
                                       reply_settings=short_settings())
    with caplog.at_level(logging.ERROR):
        chat_services.reply_run(message_id=reply.pk)
    reply = Message.objects.get(pk=reply.pk)
    assert reply.status == JobStatus.FAILED
    assert "hunter2" not in reply.reason and "RuntimeError" not in reply.reason
    error_id = _error_id(reply.reason)
    assert any(error_id in r.getMessage() and SECRET in (r.exc_text or str(r.exc_info)) for r in caplog.records)


def test_a_failed_image_job_shows_a_generic_message(project, bob, monkeypatch, caplog):
    from webapp.studio import services as studio_services
    from webapp.studio import tasks as studio_tasks
    from webapp.studio.models import Job

    def boom(**kwargs):
        raise OSError(SECRET)

    monkeypatch.setattr(studio_services, "job_run", boom)
    job = Job.objects.create(project=project, author=bob, params={"prompt": "a cat"}, model_name="m")
    with caplog.at_level(logging.ERROR):
        studio_tasks.run_image_job.run(job.pk)
    job.refresh_from_db()
    assert "hunter2" not in job.reason and "OSError" not in job.reason
    assert _error_id(job.reason) in caplog.text

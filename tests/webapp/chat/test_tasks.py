"""The worker side, run in this process on a tiny model built in code (about 1 ms a token)."""
from __future__ import annotations

import pytest

from tests.factories import membership_of
from tests.helpers import short_settings
from webapp.chat import services, stream
from webapp.chat.models import Message
from webapp.core import jobs
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


@pytest.fixture
def queued(conversation, bob, tiny_model, no_enqueue):
    def make(**params):
        return services.message_send(
            conversation=conversation, actor=membership_of(bob), text="Say something", parent=None,
            reply_settings=short_settings(model_name=tiny_model, **params),
        )

    return make


def test_reply_run_streams_numbered_chunks_that_join_to_the_stored_text(queued):
    reply = queued(max_new_tokens=24, strategy="sample", seed=3)
    done = services.reply_run(message_id=reply.pk, worker="w@h")
    events = stream.log_read(message=reply)
    chunks = [e for e in events if e["type"] == "chunk"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "end" and events[-1]["status"] == "done"
    assert "".join(e["text"] for e in chunks) == done.text and done.text
    assert done.status == JobStatus.DONE and done.worker == "w@h"
    assert done.completion_tokens > 0 and done.tokens_per_second > 0 and done.params["seed"] == 3


def test_reply_run_twice_does_nothing_the_second_time(queued):
    reply = queued()
    services.reply_run(message_id=reply.pk)
    assert services.reply_run(message_id=reply.pk) is None


def test_a_stop_request_ends_the_reply_stopped(queued):
    reply = queued(max_new_tokens=200)
    jobs.job_stop_request(kind=services.REPLY, job=reply)  # before the worker starts: seen at once
    done = services.reply_run(message_id=reply.pk)
    assert done.status == JobStatus.STOPPED and done.finish_reason == "cancelled"


def test_an_engine_failure_mid_reply_keeps_the_partial_text_and_the_reason(queued, monkeypatch):
    from generation.text import engine
    from generation.text.types import TokenDelta

    def broken(request, *, should_stop):
        yield TokenDelta("Half ", 0, 0.01)
        yield TokenDelta("a reply", 1, 0.02)
        raise RuntimeError("CUDA fell over")

    monkeypatch.setattr(engine, "generate_text", broken)
    reply = queued()
    done = services.reply_run(message_id=reply.pk)
    assert done.status == JobStatus.FAILED
    assert done.text == "Half a reply"
    assert "CUDA fell over" not in done.reason and "error id" in done.reason  # the detail is in the log
    assert stream.log_read(message=reply)[-1]["status"] == "failed"


def test_a_request_the_engine_rejects_fails_with_the_field_and_reason(queued, monkeypatch):
    reply = queued(max_new_tokens=500)  # the tiny model's context is 512 tokens, the prompt needs some
    done = services.reply_run(message_id=reply.pk)
    assert done.status == JobStatus.FAILED
    assert done.reason.startswith("max_new_tokens:")


def test_the_task_marks_the_reply_failed_when_something_outside_the_engine_breaks(queued, monkeypatch):
    from webapp.chat import tasks

    reply = queued()

    def explode(**kwargs):
        raise ConnectionError("database went away")

    monkeypatch.setattr(services, "reply_run", explode)
    with pytest.raises(ConnectionError):
        tasks.generate_reply.run(reply.pk)
    reply.refresh_from_db()
    assert reply.status == JobStatus.FAILED and "error id" in reply.reason and "database went away" not in reply.reason


def test_the_worker_history_is_the_path_to_the_prompt(queued, conversation, bob, tiny_model):
    first = queued()
    Message.objects.filter(pk=first.pk).update(status=JobStatus.DONE, text="Hello!")
    first.refresh_from_db()
    second = services.message_send(conversation=conversation, actor=membership_of(bob), text="And then?", parent=first,
                                   reply_settings=short_settings(model_name=tiny_model))
    history = services.reply_history(message=second)
    assert [(m.role, m.text) for m in history] == [("user", "Say something"), ("assistant", "Hello!"), ("user", "And then?")]


def test_a_worker_process_loads_the_default_model_when_it_starts(monkeypatch):
    from generation.text import engine
    from generation.text.types import DEFAULT_TEXT_MODEL
    from webapp.chat import tasks

    loaded = []
    monkeypatch.setattr(engine, "text_engine", loaded.append)
    tasks.load_default_text_model()
    assert loaded == [DEFAULT_TEXT_MODEL]
    monkeypatch.setenv("ATELIER_PRELOAD_TEXT_MODEL", "0")
    tasks.load_default_text_model()
    assert loaded == [DEFAULT_TEXT_MODEL]


def test_a_reply_for_a_model_that_cannot_load_is_failed_by_the_task(queued, monkeypatch):
    from webapp.chat import tasks

    reply = queued()
    Message.objects.filter(pk=reply.pk).update(model_name="gone-model")
    with pytest.raises(Exception, match="gone-model"):
        tasks.generate_reply.run(reply.pk)
    reply.refresh_from_db()
    assert reply.status == JobStatus.FAILED and "error id" in reply.reason

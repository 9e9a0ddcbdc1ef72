from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from generation.errors import ValidationError as GenerationValidationError
from tests.factories import membership_of
from tests.helpers import short_settings
from webapp.chat import services, stream
from webapp.chat.models import Message, Role
from webapp.core import jobs
from webapp.core.jobs import JobStatus
from webapp.prompts.models import PromptRecord

pytestmark = pytest.mark.django_db


def _send(conversation, author, text="Plan the launch", parent=None, **params):
    return services.message_send(
        conversation=conversation, actor=membership_of(author), text=text, parent=parent, reply_settings=short_settings(**params)
    )


def test_message_send_creates_prompt_and_queued_reply_and_enqueues_after_commit(
    conversation, bob, no_enqueue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = _send(conversation, bob)
        assert no_enqueue == []  # nothing goes to the broker before the commit
    for callback in callbacks:
        callback()
    assert no_enqueue.ids_and_queues() == [(reply.pk, "text")]
    assert reply.role == Role.ASSISTANT and reply.status == JobStatus.QUEUED
    assert reply.parent.role == Role.USER and reply.parent.text == "Plan the launch"
    assert reply.params["max_new_tokens"] == 8


def test_message_send_records_the_prompt_in_the_project_history(conversation, bob, no_enqueue):
    reply = _send(conversation, bob, temperature=0.3)
    record = PromptRecord.objects.get()
    assert (record.project, record.author, record.kind, record.text) == (conversation.project, bob, "chat", "Plan the launch")
    assert record.params["temperature"] == 0.3 and record.model_name == reply.model_name
    assert reply.parent.prompt == record


def test_message_send_with_bad_params_creates_and_enqueues_nothing(conversation, bob, no_enqueue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(GenerationValidationError) as caught:
        _send(conversation, bob, top_p=0)
    assert caught.value.field == "top_p"
    assert not Message.objects.exists() and not PromptRecord.objects.exists() and no_enqueue == []


def test_first_prompt_names_the_conversation(conversation, bob, no_enqueue):
    _send(conversation, bob, text="Draft   the\nlaunch email")
    conversation.refresh_from_db()
    assert conversation.title == "Draft the launch email"


def test_message_send_rejects_a_parent_still_streaming(conversation, bob, no_enqueue):
    reply = _send(conversation, bob)
    with pytest.raises(ValidationError):
        _send(conversation, bob, text="next", parent=reply)


def test_message_send_rejects_a_parent_from_another_conversation(conversation, project, alice, bob, no_enqueue):
    other = services.conversation_create(project=project, actor=membership_of(alice), reply_settings=short_settings())
    reply = _send(other, bob)
    Message.objects.filter(pk=reply.pk).update(status=JobStatus.DONE)
    reply.refresh_from_db()
    with pytest.raises(ValidationError):
        _send(conversation, bob, parent=reply)


def test_reply_regenerate_adds_a_sibling_reply(conversation, bob, no_enqueue, django_capture_on_commit_callbacks):
    first = _send(conversation, bob)
    Message.objects.filter(pk=first.pk).update(status=JobStatus.DONE, text="one")
    first.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        second = services.reply_regenerate(message=first, actor=membership_of(bob), reply_settings=short_settings())
    assert second.parent_id == first.parent_id and second.pk != first.pk
    assert no_enqueue.ids_and_queues() == [(second.pk, "text")]


def test_message_edit_resend_branches_beside_the_original(conversation, bob, no_enqueue):
    reply = _send(conversation, bob, text="v1")
    Message.objects.filter(pk=reply.pk).update(status=JobStatus.DONE)
    new_reply = services.message_edit_resend(message=reply.parent, actor=membership_of(bob), text="v2", reply_settings=short_settings())
    assert new_reply.parent.text == "v2" and new_reply.parent.parent_id == reply.parent.parent_id
    assert Message.objects.get(pk=reply.parent_id).text == "v1"  # the old branch stays
    assert PromptRecord.objects.count() == 2


def test_reply_stop_on_a_queued_reply_ends_it_stopped_at_once(
    conversation, bob, no_enqueue, redis_server, django_capture_on_commit_callbacks
):
    reply = _send(conversation, bob)
    with django_capture_on_commit_callbacks(execute=True):
        services.reply_stop(message=reply, actor=membership_of(bob))
    reply.refresh_from_db()
    assert reply.status == JobStatus.STOPPED
    # The worker that later picks the task up does nothing.
    assert services.reply_run(message_id=reply.pk) is None
    assert stream.log_read(message=reply)[-1] == {"type": "end", "message": reply.pk, "seq": 1, "status": "stopped"}


def test_the_sweep_fails_a_silent_reply_with_its_partial_text(
    conversation, bob, no_enqueue, redis_server, django_capture_on_commit_callbacks
):
    reply = _send(conversation, bob)
    long_ago = timezone.now() - timedelta(minutes=5)
    Message.objects.filter(pk=reply.pk).update(status=JobStatus.RUNNING, heartbeat_at=long_ago, text="Hel")
    out = stream.ReplyStream(message=reply, group=conversation.group_name)
    out.write("Hello")
    out.flush()
    out.write(" wor")
    out.flush()
    out.close()

    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.jobs_sweep_stale() == 1
    reply.refresh_from_db()
    assert reply.status == JobStatus.FAILED
    assert reply.text == "Hello wor"  # the log had more than the last heartbeat
    assert "stopped responding" in reply.reason
    assert stream.log_read(message=reply, after=2) == [
        {"type": "end", "message": reply.pk, "seq": 3, "status": "failed"}
    ]


def test_the_sweep_leaves_a_reply_with_a_fresh_heartbeat(conversation, bob, no_enqueue, redis_server):
    reply = _send(conversation, bob)
    Message.objects.filter(pk=reply.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now(), worker="w1@h")
    assert jobs.jobs_sweep_stale() == 0
    # ...unless the worker that owned it starts again under the same name: it owns nothing yet.
    assert jobs.jobs_sweep_stale(worker="w1@h") == 1


def test_conversation_delete_asks_live_replies_to_stop(conversation, alice, bob, no_enqueue, redis_server,
                                                        django_capture_on_commit_callbacks):
    reply = _send(conversation, bob)
    with django_capture_on_commit_callbacks(execute=True):  # alice started the conversation (chat.delete)
        services.conversation_delete(conversation=conversation, actor=membership_of(alice))
    run = jobs.JobRun(kind=services.REPLY, job=reply)  # what the worker's stop watch sees first
    assert run.should_stop() and run.stopped
    assert not Message.objects.exists()


def test_conversation_rename_rejects_an_empty_title(conversation, alice):
    with pytest.raises(ValidationError):
        services.conversation_rename(conversation=conversation, actor=membership_of(alice), title="  ")
    renamed = services.conversation_rename(conversation=conversation, actor=membership_of(alice), title=" Launch plan ")
    assert renamed.title == "Launch plan"


@pytest.mark.parametrize("write", ["send", "rename", "settings", "delete", "stop", "regenerate"])
def test_write_services_refuse_a_viewer(conversation, bob, carol, no_enqueue, write):
    from django.core.exceptions import PermissionDenied

    reply = _send(conversation, bob)
    Message.objects.filter(pk=reply.pk).update(status=JobStatus.DONE)
    reply.refresh_from_db()
    viewer = membership_of(carol)
    calls = {
        "send": lambda: services.message_send(conversation=conversation, actor=viewer, text="x", parent=reply,
                                              reply_settings=short_settings()),
        "rename": lambda: services.conversation_rename(conversation=conversation, actor=viewer, title="x"),
        "settings": lambda: services.conversation_settings_update(conversation=conversation, actor=viewer,
                                                                  reply_settings=short_settings()),
        "delete": lambda: services.conversation_delete(conversation=conversation, actor=viewer),
        "stop": lambda: services.reply_stop(message=reply, actor=viewer),
        "regenerate": lambda: services.reply_regenerate(message=reply, actor=viewer, reply_settings=short_settings()),
    }
    with pytest.raises(PermissionDenied):
        calls[write]()
    assert Message.objects.count() == 2


def test_write_services_refuse_an_outsider(conversation, mallory, other_project, no_enqueue):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        _send(conversation, mallory)
    with pytest.raises(PermissionDenied):
        services.conversation_rename(conversation=conversation, actor=membership_of(mallory), title="mine")
    assert not Message.objects.exists()

"""The real stack: a real Celery worker decodes with the real default model, and the lifecycle's
``job_finished`` writes the usage record in the worker's transaction."""
from __future__ import annotations

import pytest

from tests.helpers import chat_send, session_client, wait_for
from webapp.chat.models import Message
from webapp.usage.models import UsageRecord

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def test_a_reply_from_a_real_worker_leaves_its_usage_record(celery_worker, conversation, bob, project):
    message_id = chat_send(session_client(bob), conversation, "List three fruits.", strategy="greedy",
                           max_new_tokens=16)
    record = wait_for(lambda: UsageRecord.objects.filter(kind="chat.reply", job_id=message_id).first(), 180,
                      "the reply's usage record")
    reply = Message.objects.get(pk=message_id)
    assert record.status == reply.status == "done" and record.model_name == "smollm2-135m-instruct"
    assert (record.prompt_tokens, record.completion_tokens) == (reply.prompt_tokens, reply.completion_tokens)
    assert record.completion_tokens > 0 and 0 < record.compute_seconds <= reply.elapsed + 0.01
    assert (record.team_id, record.project_id, record.user_id, record.interface) == (
        project.team_id, project.pk, bob.pk, "web")

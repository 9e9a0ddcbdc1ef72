"""Cancel and stop land within 2 s, with the real worker and the default models.

Measured from the request (the service call a view makes) to the row's end status, for a
running image job (cancel) and a running chat reply (stop). The lifecycle tests
(tests/webapp/core/test_jobs.py) check that a stop lands at all, within a step; this
checks the latency the user sees.
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from tests.factories import membership_of
from tests.helpers import short_settings, tiny_request, wait_for
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]
LIMIT = 2.0
WAIT = 300  # the suite's worker may still be loading the default models


def _fresh(row: Any) -> Any:
    return type(row).objects.get(pk=row.pk)


def _time_to_end(row: Any, stop: Any) -> tuple[float, Any]:
    asked = time.monotonic()
    stop()
    ended = wait_for(lambda: _fresh(row).status != JobStatus.RUNNING and _fresh(row), 60, "the end status",
                     interval=0.02)
    return time.monotonic() - asked, ended


def test_a_running_image_job_is_cancelled_within_2_s(project, bob, celery_worker):
    from webapp.studio import services

    job = services.job_create(project=project, actor=membership_of(bob),
                              request=tiny_request(steps=150, width=64, height=64))
    wait_for(lambda: _fresh(job).status == JobStatus.RUNNING and _fresh(job).steps_done >= 2, WAIT, "the job to run")
    took, ended = _time_to_end(job, lambda: services.job_cancel(job=job, actor=membership_of(bob)))
    assert ended.status == JobStatus.STOPPED
    assert ended.steps_done < 150 and not ended.assets.exists()
    assert took < LIMIT, f"the cancel took {took:.2f} s"


def test_a_streaming_chat_reply_is_stopped_within_2_s(project, bob, celery_worker):
    from webapp.chat import services, stream

    membership = membership_of(bob)
    conversation = services.conversation_create(project=project, actor=membership,
                                                reply_settings=short_settings())
    reply = services.message_send(conversation=conversation, actor=membership, text="Tell me a long story.",
                                  parent=None, reply_settings=short_settings(max_new_tokens=1000))
    wait_for(lambda: _fresh(reply).status == JobStatus.RUNNING and len(stream.log_read(message=reply)) >= 3,
             WAIT, "the reply to stream")
    took, ended = _time_to_end(reply, lambda: services.reply_stop(message=reply, actor=membership))
    assert ended.status == JobStatus.STOPPED and ended.finish_reason == "cancelled"
    assert 0 < ended.completion_tokens < 1000
    assert ended.text == stream.log_text(message=ended)  # what streamed is what is kept
    assert took < LIMIT, f"the stop took {took:.2f} s"

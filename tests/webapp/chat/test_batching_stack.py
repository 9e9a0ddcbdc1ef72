"""A real text worker (a thread pool of ``ATELIER_TEXT_BATCH`` threads, one engine) decodes
4 chats sent at once in one batch, with the real default model and the real Redis."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import transaction

from tests.factories import membership_of
from tests.helpers import short_settings, text_queue_route, text_worker_own_queue
from webapp.chat import services
from webapp.chat.models import Message
from webapp.core.jobs import END_STATUSES, JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

ROOT = settings.BASE_DIR
# Long answers (64 tokens each): the four tasks' claims and prompt building take a moment each
# on a busy machine, and a short reply could end before the last one joins the batch.
PROMPTS = [
    "What is the capital of France? Answer, then describe the city in a long paragraph.",
    "Name three colors and describe each one in detail.",
    "Explain step by step why 2 + 2 is 4.",
    "Who wrote Hamlet? Tell me about the author's life at length.",
]


@pytest.fixture(scope="module")
def text_worker(redis_server, django_db_setup) -> Iterator[str]:
    """A text worker on a queue of its own, so no other test's worker takes these replies."""
    # Same tokens alone and batched needs OpenVINO's f32 kernels (README: the text engine).
    env = {"ATELIER_TEXT_BATCH": "8", "ATELIER_OPENVINO_PRECISION": "exact"}
    with text_worker_own_queue("batch", env=env) as (queue, _):
        yield queue


@pytest.fixture
def to_text_worker(text_worker, monkeypatch):
    text_queue_route(monkeypatch, text_worker)


def _send(project, user, prompt: str) -> int:
    reply = services.conversation_start(
        project=project, actor=membership_of(user), text=prompt, reply_settings=short_settings(max_new_tokens=64)
    )
    return reply.pk


def _wait(ids: list[int], timeout: float = 240) -> list[Message]:
    deadline = time.monotonic() + timeout
    while True:
        replies = list(Message.objects.filter(pk__in=ids).order_by("pk"))
        if all(r.status in END_STATUSES for r in replies):
            return replies
        assert time.monotonic() < deadline, [(r.pk, r.status) for r in replies]
        time.sleep(0.2)


def test_four_chats_sent_at_once_are_decoded_in_one_batch_with_the_text_of_each_alone(
    to_text_worker, project, alice
):
    alone = []
    for prompt in PROMPTS:
        alone.extend(_wait([_send(project, alice, prompt)]))

    with transaction.atomic():  # the four tasks leave together, when this commits
        ids = [_send(project, alice, prompt) for prompt in PROMPTS]
    together = _wait(ids)

    assert all(r.status == JobStatus.DONE for r in alone + together), [(r.status, r.reason) for r in alone + together]
    assert [r.batch_max for r in alone] == [1, 1, 1, 1]
    # The four tasks reach the worker within a few ms and each decodes for seconds: all four
    # share the engine's steps at some point, and each mostly decodes in company.
    timings = [(r.batch_max, r.batch_mean, r.started_at.time(), r.finished_at.time()) for r in together]
    assert max(r.batch_max for r in together) == 4, timings
    batched = [r for r in together if r.batch_max >= 3]
    assert len(batched) == 4, timings
    assert all(r.batch_mean > 1 for r in batched)
    assert [r.text for r in together] == [r.text for r in alone]
    assert "Paris" in together[0].text

"""Finding 2, measured: one member floods the ``text`` queue through the API from many keys;
another member's chat still gets its first token within a second (a real text worker, the real
default model). Before the fix the flood (here 10 keys x 4 requests x n=4 = 160 jobs) sat
ahead of her chat in the queue."""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
from django.db import transaction

from tests.factories import membership_of
from tests.helpers import (
    make_key,
    principal_args,
    short_settings,
    text_queue_route,
    text_worker_own_queue,
    wait_for,
)
from webapp.api import selectors, services
from webapp.api.models import TextJob
from webapp.api.params import chat_spec
from webapp.chat import services as chat
from webapp.chat import stream as chat_stream
from webapp.core.jobs import QuotaExceeded
from webapp.core.redis import get_redis

pytestmark = [pytest.mark.stack, pytest.mark.model, pytest.mark.django_db(transaction=True)]

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def flood_worker(redis_server, django_db_setup) -> Iterator[str]:
    with text_worker_own_queue("flood", env={"ATELIER_TEXT_BATCH": "8"}) as (queue, _):
        yield queue


@pytest.fixture
def to_flood_worker(flood_worker, monkeypatch):
    text_queue_route(monkeypatch, flood_worker)


def _first_token_seconds(project, user) -> float:
    sent = time.monotonic()
    reply = chat.conversation_start(project=project, actor=membership_of(user, project.team),
                                    text="Name three colours.", reply_settings=short_settings(max_new_tokens=8))
    client, key = get_redis(), chat_stream.log_key(reply)

    def first_chunk():
        return any(b'"chunk"' in fields[b"e"] for _, fields in client.xrange(key, count=8))

    wait_for(first_chunk, 60, "alice's first token", interval=0.005)
    return time.monotonic() - sent


def test_a_members_api_flood_leaves_anothers_chat_its_first_token_within_a_second(to_flood_worker, project, alice,
                                                                                 bob):
    spec = chat_spec({"model": MODEL, "messages": [{"role": "user", "content": "Write a very long story."}],
                      "n": 4, "max_tokens": 400, "temperature": 0})
    accepted = refused = 0
    with transaction.atomic():  # every accepted job leaves for the queue at once, when this commits
        for n in range(10):
            principal = selectors.key_authenticate(authorization=f"Bearer {make_key(bob, project, name=f'k{n}').secret}")
            for _ in range(4):
                try:
                    accepted += len(services.text_call_create(**principal_args(principal), spec=spec, kind="chat"))
                except QuotaExceeded:
                    refused += 1
    assert accepted <= 4 and refused >= 39
    wait_for(lambda: TextJob.objects.filter(user=bob, status="running").count() == accepted, 120,
             "bob's jobs to be decoding")
    seconds = [_first_token_seconds(project, alice) for _ in range(3)]
    assert TextJob.objects.filter(user=bob, status="running").exists(), "the flood ended before alice's chats"
    print(f"alice's time to first token beside the flood: {seconds}")
    assert statistics.median(seconds) <= 1.0, seconds
    services.text_jobs_stop(jobs=list(TextJob.objects.filter(user=bob, status__in=["queued", "running"])))

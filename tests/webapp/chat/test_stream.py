from __future__ import annotations

import contextlib

import pytest

from tests.factories import membership_of
from webapp.chat import stream
from webapp.core.redis import get_redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reply(conversation, bob):
    from tests.helpers import short_settings
    from webapp.chat import services

    return services.message_send(conversation=conversation, actor=membership_of(bob), text="hi", parent=None,
                                 reply_settings=short_settings())


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def test_reply_stream_sends_the_first_delta_at_once_then_coalesces(reply):
    clock = FakeClock()
    out = stream.ReplyStream(message=reply, group="g", interval=0.02, max_pending=4, clock=clock)
    out.write("A")  # first token: out at once, for the time to first token
    for text in ["b", "c", "d"]:
        clock.now += 0.001
        out.write(text)
    clock.now += 0.02  # 20 ms since the last chunk: the next delta flushes everything waiting
    out.write("e")
    for text in "fghi":  # four waiting deltas flush without waiting for the clock
        out.write(text)
    out.end(status="done")
    events = stream.log_read(message=reply)
    assert [(e["seq"], e.get("text")) for e in events] == [(1, "A"), (2, "bcde"), (3, "fghi"), (4, None)]
    assert events[-1] == {"type": "end", "message": reply.pk, "seq": 4, "status": "done"}
    assert out.text == "Abcdefghi"


def test_log_read_returns_only_events_after_the_given_seq(reply):
    out = stream.ReplyStream(message=reply, group="g", interval=0)
    for text in ["one ", "two ", "three"]:
        out.write(text)
    out.close()
    assert [e["text"] for e in stream.log_read(message=reply, after=1)] == ["two ", "three"]
    assert stream.log_read(message=reply, after=3) == []
    assert stream.log_text(message=reply) == "one two three"


def test_the_log_refuses_a_duplicate_sequence_number(reply):
    import json

    import redis

    out = stream.ReplyStream(message=reply, group="g", interval=0)
    out.write("x")
    out.close()
    with pytest.raises(redis.ResponseError):
        get_redis().xadd(stream.log_key(reply), {b"e": json.dumps({"seq": 1})}, id="0-1")


def test_the_log_expires(reply, settings):
    out = stream.ReplyStream(message=reply, group="g", interval=0)
    out.write("x")
    out.close()
    ttl = get_redis().ttl(stream.log_key(reply))
    assert 0 < ttl <= settings.CHAT_STREAM_TTL


def test_stop_watch_sees_a_stop_request_at_once(reply):
    import time

    from webapp.chat.services import REPLY
    from webapp.core import jobs

    with jobs.JobRun(kind=REPLY, job=reply, interval=3600) as run:
        assert run.should_stop() is False
        asked = time.monotonic()
        jobs.job_stop_request(kind=REPLY, job=reply)
        while not run.should_stop() and time.monotonic() - asked < 2:
            time.sleep(0.001)
        assert run.should_stop() is True
        assert time.monotonic() - asked < 0.2  # woken by the queue, not by a poll


def test_a_stop_requested_before_decoding_starts_is_seen_at_once(reply):
    from webapp.chat.services import REPLY
    from webapp.core import jobs

    jobs.job_stop_request(kind=REPLY, job=reply)
    run = jobs.JobRun(kind=REPLY, job=reply)
    assert run.should_stop() is True


def test_the_writer_thread_logs_chunks_in_order_under_a_burst(reply):
    out = stream.ReplyStream(message=reply, group="g", interval=0)
    for i in range(500):
        out.write(f"{i} ")
    out.end(status="done")
    events = stream.log_read(message=reply)
    assert [e["seq"] for e in events] == list(range(1, 502))
    assert "".join(e.get("text", "") for e in events) == "".join(f"{i} " for i in range(500))


def test_replies_decoding_together_share_one_chunk_budget(reply):
    from webapp.core import pacing

    clock = FakeClock()
    out = stream.ReplyStream(message=reply, group="g", interval=0.02, max_pending=100, clock=clock)
    with contextlib.ExitStack() as live:
        for _ in range(3):  # three replies decoding in this process: each waits 3 / EVENTS_PER_SECOND
            live.enter_context(pacing.streaming())
        spacing = 1 / pacing.EVENTS_PER_SECOND + 0.0001
        out.write("A")  # the first chunk still goes at once
        for text in "bcd":
            clock.now += spacing
            out.write(text)  # after one and two thirds it waits; after three it goes
        clock.now += 0.001
        out.write("e")
    out.end(status="done")
    assert [e.get("text") for e in stream.log_read(message=reply)] == ["A", "bcd", "e", None]
    assert pacing.live_streams() == 0

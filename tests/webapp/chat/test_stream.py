from __future__ import annotations

import pytest

from webapp.chat import stream


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def reply(conversation, bob):
    from tests.webapp.chat.conftest import short_settings
    from webapp.chat import services

    return services.message_send(conversation=conversation, author=bob, text="hi", parent=None,
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
    assert [e["text"] for e in stream.log_read(message=reply, after=1)] == ["two ", "three"]
    assert stream.log_read(message=reply, after=3) == []
    assert stream.log_text(message=reply) == "one two three"


def test_the_log_refuses_a_duplicate_sequence_number(reply):
    import json

    import redis

    out = stream.ReplyStream(message=reply, group="g", interval=0)
    out.write("x")
    with pytest.raises(redis.ResponseError):
        stream.get_redis().xadd(stream.log_key(reply), {b"e": json.dumps({"seq": 1})}, id="0-1")


def test_the_log_expires(reply, settings):
    out = stream.ReplyStream(message=reply, group="g", interval=0)
    out.write("x")
    ttl = stream.get_redis().ttl(stream.log_key(reply))
    assert 0 < ttl <= settings.CHAT_STREAM_TTL


def test_stop_checker_sees_a_stop_request(reply):
    should_stop = stream.stop_checker(message=reply, min_interval=0)
    assert should_stop() is False
    stream.stop_request(message=reply)
    assert should_stop() is True

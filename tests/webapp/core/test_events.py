from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers

from webapp.core.events import get_publisher


@pytest.mark.stack
def test_publisher_delivers_events_in_order_to_a_group(redis_server):
    async def receive_all(count: int) -> list[int]:
        # A layer of its own: a channels_redis layer's receive lock belongs to the
        # first event loop that receives on it, and this test runs its own loop.
        layer = channel_layers.make_backend("default")
        channel = await layer.new_channel()
        await layer.group_add("test_events", channel)
        publisher = get_publisher()
        for i in range(count):
            publisher.publish("test_events", {"type": "test.event", "seq": i})
        received = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(count)]
        await layer.group_discard("test_events", channel)
        return [message["seq"] for message in received]

    assert asyncio.run(receive_all(50)) == list(range(50))
    assert get_publisher().flush(timeout=5)


class _Layer:
    """A channel layer that records sends; ``slow`` groups take 0.3 s a send."""

    def __init__(self, slow: set[str]) -> None:
        self.slow = slow
        self.sent: list[tuple[str, int]] = []

    async def group_send(self, group: str, message: dict) -> None:
        await asyncio.sleep(0.3 if group in self.slow else 0)
        self.sent.append((group, message["seq"]))


def test_a_slow_group_holds_up_no_other_and_each_group_keeps_its_order(monkeypatch):
    from webapp.core.events import ChannelPublisher

    layer = _Layer(slow={"slow"})
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda *args, **kwargs: layer)
    publisher = ChannelPublisher()
    for seq in range(3):
        publisher.publish("slow", {"type": "t", "seq": seq})
        for group in ("a", "b"):
            publisher.publish(group, {"type": "t", "seq": seq})
    assert publisher.flush(timeout=5)  # waits for every lane, the slow one included

    for group in ("slow", "a", "b"):
        assert [seq for g, seq in layer.sent if g == group] == [0, 1, 2]
    # The fast groups' six events all went out before the slow group's second one.
    assert layer.sent.index(("slow", 1)) > max(layer.sent.index((g, 2)) for g in ("a", "b"))

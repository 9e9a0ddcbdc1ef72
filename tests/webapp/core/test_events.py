from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from webapp.core.events import get_publisher


@pytest.mark.stack
def test_publisher_delivers_events_in_order_to_a_group(redis_server):
    async def receive_all(count: int) -> list[int]:
        layer = get_channel_layer()
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

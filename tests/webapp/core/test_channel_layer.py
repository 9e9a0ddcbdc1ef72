"""The configured channel layer lets go when its reader is cancelled.

Every websocket consumer reads its channel in a task that is cancelled when the socket
closes. With a client socket timeout, redis-py 8.1 could lose that cancellation while a
connection was being made, and the reader then waited on Redis forever: a closed socket
leaked a task, and an event loop that waited for it (a test's, daphne's at shutdown) hung.
"""
from __future__ import annotations

import asyncio
import random

import pytest
from channels.layers import get_channel_layer

pytestmark = pytest.mark.usefixtures("redis_server")


async def test_a_cancelled_receive_ends_every_time():
    layer = get_channel_layer()
    rng = random.Random(7)
    for attempt in range(60):
        channel = await layer.new_channel()
        reader = asyncio.ensure_future(layer.receive(channel))
        # Cancel at any point: before the connection is made, during it, or mid-read.
        await asyncio.sleep(rng.random() * 0.02)
        reader.cancel()
        done, _ = await asyncio.wait([reader], timeout=10)
        assert done, f"attempt {attempt}: the cancelled reader is still waiting on Redis"
        assert reader.cancelled(), f"attempt {attempt}: {reader.exception()!r}"


async def test_a_message_still_arrives_after_a_quiet_spell_longer_than_a_server_block():
    """No client timeout must not mean a reader gives up: BZPOPMIN blocks 5 s at a time."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    reader = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(6)
    await layer.send(channel, {"type": "ping"})
    assert (await asyncio.wait_for(reader, timeout=10))["type"] == "ping"

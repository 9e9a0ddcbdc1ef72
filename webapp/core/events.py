"""Publishing channel-layer events from synchronous worker code, cheaply.

``async_to_sync(layer.group_send)`` per event opens a fresh event loop (and a
fresh Redis connection) each call; measured on the chat path it cost 12% of
decode throughput. Instead each worker process keeps one event loop in a
background thread with one channel layer, and generation threads hand it
events through a queue. A single sender task keeps events in order.

Celery's main process (prefork) must never start that thread: it forks the
pool processes, and a thread there could leave a child a lock held forever.
Once ``publish_without_thread()`` has been called (the worker's ``worker_init``
hook does it), ``get_publisher()`` in that process returns a ``OnceSender``,
which sends each event on its own short-lived loop; a forked child starts
over with the threaded publisher. So no caller has to know which process it
runs in.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any, Protocol

logger = logging.getLogger(__name__)

_FLUSH = object()


class ChannelPublisher:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._queue: asyncio.Queue[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="channel-publisher", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._queue = asyncio.Queue()
        self._loop.create_task(self._sender())
        self._ready.set()
        self._loop.run_forever()

    async def _sender(self) -> None:
        """One ordered lane per group; different groups send concurrently.

        Each ``group_send`` is a few Redis round trips, and in a busy worker each
        wake-up of this thread also waits its turn for the CPU: with one lane for
        everything, one chat's events waited behind every other chat's.
        """
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        assert self._queue is not None
        lanes: dict[str, asyncio.Task[None]] = {}
        flushes: set[asyncio.Task[None]] = set()
        while True:
            item = await self._queue.get()
            if isinstance(item, tuple) and item[0] is _FLUSH:
                flush = asyncio.ensure_future(self._flush_after(list(lanes.values()), item[1]))
                flushes.add(flush)  # a task nothing refers to may be collected mid-way
                flush.add_done_callback(flushes.discard)
                continue
            group, message = item
            lane = asyncio.ensure_future(self._send_after(lanes.get(group), layer, group, message))
            lanes[group] = lane
            lane.add_done_callback(functools.partial(_lane_done, lanes, group))

    @staticmethod
    async def _flush_after(lanes: list[asyncio.Task[None]], flushed: asyncio.Future[bool]) -> None:
        if lanes:
            await asyncio.wait(lanes)
        flushed.set_result(True)

    @staticmethod
    async def _send_after(previous: asyncio.Task[None] | None, layer: Any, group: str, message: dict[str, Any]) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # the group's earlier events go first
        try:
            await layer.group_send(group, message)
        except Exception:  # a lost event must not kill the publisher
            logger.exception("could not publish %s to %s", message.get("type"), group)

    def publish(self, group: str, message: dict[str, Any]) -> None:
        """Queue ``message`` for ``group`` and return at once. Events keep their order."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (group, message))  # type: ignore[union-attr]

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event queued so far has been sent. False on timeout."""
        done: Future[bool] = Future()

        def _put() -> None:
            fut: asyncio.Future[bool] = self._loop.create_future()
            fut.add_done_callback(lambda f: done.set_result(True))
            self._queue.put_nowait((_FLUSH, fut))  # type: ignore[union-attr]

        self._loop.call_soon_threadsafe(_put)
        try:
            return done.result(timeout=timeout)
        except TimeoutError:
            return False


def _lane_done(lanes: dict[str, asyncio.Task[None]], group: str, lane: asyncio.Task[None]) -> None:
    if lanes.get(group) is lane:  # no later event of the group queued behind it
        del lanes[group]


class Publisher(Protocol):
    def publish(self, group: str, message: dict[str, Any]) -> None: ...

    def flush(self, timeout: float = 5.0) -> bool: ...


class OnceSender:
    """Sends each event at once on a fresh event loop: slow, but starts no thread."""

    def publish(self, group: str, message: dict[str, Any]) -> None:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        try:
            async_to_sync(get_channel_layer().group_send)(group, message)
        except Exception:  # a lost event must not break the caller (a signal hook)
            logger.exception("could not publish %s to %s", message.get("type"), group)

    def flush(self, timeout: float = 5.0) -> bool:
        return True


_publisher: ChannelPublisher | None = None
_publisher_pid: int | None = None
_lock = threading.Lock()
_without_thread = False


def publish_without_thread() -> None:
    """From now on this process publishes without a thread (Celery's forking main process)."""
    global _without_thread
    _without_thread = True


def in_forking_parent() -> bool:
    return _without_thread


def get_publisher() -> Publisher:
    """This process's publisher, created on first use (after a fork, anew)."""
    global _publisher, _publisher_pid
    if _without_thread:
        return OnceSender()
    with _lock:
        if _publisher is None or _publisher_pid != os.getpid():
            _publisher = ChannelPublisher()
            _publisher_pid = os.getpid()
        return _publisher


def _forget_after_fork() -> None:
    """A forked child (a Celery pool process) starts with no publisher and no channel layer.

    The parent's publisher thread does not exist in the child, and the
    channel layer it used holds asyncio state from the parent's loop; a
    child that reused them lost its events.
    """
    global _publisher, _publisher_pid, _lock, _without_thread
    from channels.layers import channel_layers

    _publisher, _publisher_pid, _lock, _without_thread = None, None, threading.Lock(), False
    channel_layers.backends.clear()


os.register_at_fork(after_in_child=_forget_after_fork)

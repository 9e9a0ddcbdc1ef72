"""A slow websocket consumer does not slow the worker.

Two replies of the same length through the real stack (daphne, the suite's worker, the
embedded Redis): one watched by a socket that reads everything at once, one by a socket
with the smallest receive buffer that reads nothing until the reply is over. The worker's
stored tokens/s for the second stays within a loose factor of the first (ratio in one run).
"""
from __future__ import annotations

import base64
import os
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import membership_of
from tests.helpers import chat_socket_path, short_settings, wait_for
from webapp.core.jobs import END_STATUSES, JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]
WAIT = 300
TOKENS = 64
RATIO = 0.7


def _open_socket(base_url: str, path: str, cookie: str, *, rcvbuf: int | None = None) -> socket.socket:
    """A websocket (RFC 6455 handshake by hand) on daphne, carrying ``cookie`` and the trusted Origin."""
    parts = urlsplit(base_url)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window stays small
    sock.settimeout(30)
    sock.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {base_url}\r\n"
        f"Cookie: {settings.SESSION_COOKIE_NAME}={cookie}\r\n\r\n"
    ).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # one byte at a time: nothing after the head is taken from the socket
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


class Drain(threading.Thread):
    """Reads everything the server sends, as fast as it comes."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock, self.received = sock, bytearray()

    def run(self) -> None:
        try:
            while data := self.sock.recv(65536):
                self.received += data
        except OSError:
            pass


def _reply(project: Any, user: Any, conversation: Any) -> Any:
    from webapp.chat import services

    return services.message_send(conversation=conversation, actor=membership_of(user),
                                 text="Tell me a long story about a lighthouse.", parent=None,
                                 reply_settings=short_settings(max_new_tokens=TOKENS))


def _ended(row: Any) -> Any:
    ended = wait_for(lambda: (fresh := type(row).objects.get(pk=row.pk)).status in END_STATUSES and fresh, WAIT,
                     "the reply to end")
    assert ended.status == JobStatus.DONE and ended.tokens_per_second and ended.completion_tokens >= 8, ended
    return ended


def _conversation(project: Any, user: Any) -> Any:
    from webapp.chat import services

    return services.conversation_create(project=project, actor=membership_of(user),
                                        reply_settings=short_settings())


def test_a_consumer_that_reads_nothing_does_not_slow_the_worker(project, bob, celery_worker, asgi_server):
    client = Client()
    client.force_login(bob)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    _ended(_reply(project, bob, _conversation(project, bob)))  # warm-up: the first reply pays for loading

    fast_conversation = _conversation(project, bob)
    fast_socket = _open_socket(asgi_server, chat_socket_path(fast_conversation), cookie)
    drain = Drain(fast_socket)
    drain.start()
    fast = _ended(_reply(project, bob, fast_conversation))
    wait_for(lambda: b'"end"' in drain.received, 30, "the fast socket to see the end")
    fast_socket.close()

    slow_conversation = _conversation(project, bob)
    slow_socket = _open_socket(asgi_server, chat_socket_path(slow_conversation), cookie, rcvbuf=1024)
    try:
        slow = _ended(_reply(project, bob, slow_conversation))
        time.sleep(1)
        slow_socket.setblocking(False)
        assert slow_socket.recv(65536, socket.MSG_PEEK)  # the events were there, unread
    finally:
        slow_socket.close()

    ratio = slow.tokens_per_second / fast.tokens_per_second
    print(f"tokens/s: fast consumer {fast.tokens_per_second:.1f}, slow consumer {slow.tokens_per_second:.1f}, "
          f"ratio {ratio:.2f}")
    assert ratio >= RATIO

"""The dashboard's own socket: a kept-alive connection answers at once, not after 40 ms."""

from __future__ import annotations

import http.client
import socket
import statistics
import time

import pytest

from jobengine import Engine
from jobengine.web import DashboardServer, WebConfig
from jobengine.web.server import listen

pytestmark = pytest.mark.timeout(60)


def test_the_listening_socket_names_tcp_so_connections_get_nodelay() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only then
    finally:
        sock.close()


def test_requests_on_a_kept_alive_connection_wait_for_no_acknowledgement(sqlite_url: str) -> None:
    """With Nagle's algorithm on, each answer's second write waits for the client's delayed
    acknowledgement: 40 ms per request, whatever the page costs."""
    engine = Engine(sqlite_url)
    server = DashboardServer(engine, WebConfig(port=0)).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        took = []
        for _ in range(10):
            began = time.perf_counter()
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            took.append(time.perf_counter() - began)
            assert answer.status == 200
        connection.close()
        assert statistics.median(took) < 0.02, took
    finally:
        server.stop()
        engine.close()

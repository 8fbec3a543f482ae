"""The drill's proxy on real loopback sockets: it relays HTTP both ways, cuts and resets
connections while the backend is "down", and holds requests while it is "slow"."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import pytest

from support.threaded_http import serving_in_thread
from threadline.drills.proxy import BackendProxy, ProxyState

DELAY_S: Final = 0.4


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def proxy() -> Iterator[BackendProxy]:
    with serving_in_thread(ThreadingHTTPServer(("127.0.0.1", 0), _Echo)) as backend:
        port = backend.server_address[1]
        with BackendProxy(("127.0.0.1", 0), ("127.0.0.1", int(port))) as relay:
            yield relay


def post(relay: BackendProxy, connection: http.client.HTTPConnection | None = None) -> bytes:
    host, port = relay.address
    connection = connection or http.client.HTTPConnection(host, port, timeout=5)
    connection.request("POST", "/v1/traces", body=b"spans")
    return connection.getresponse().read()


def test_up_relays_requests_and_answers(proxy: BackendProxy) -> None:
    """A plain relay: the backend's answer comes back byte for byte."""
    assert proxy.state is ProxyState.UP
    assert post(proxy) == b"spans"


def test_down_cuts_open_connections_and_resets_new_ones(proxy: BackendProxy) -> None:
    """A kept-alive connection fails on its next request, a new one fails at once; back
    up, requests go through again."""
    host, port = proxy.address
    kept = http.client.HTTPConnection(host, port, timeout=5)
    assert post(proxy, kept) == b"spans"
    proxy.set_down()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        post(proxy, kept)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        post(proxy)
    assert proxy.refused >= 1
    proxy.set_up()
    assert post(proxy) == b"spans"


def test_slow_holds_each_request_for_the_delay(proxy: BackendProxy) -> None:
    """Slow: the answer still comes, at least the delay later; then fast again."""
    proxy.set_slow(DELAY_S)
    started = time.monotonic()
    assert post(proxy) == b"spans"
    assert time.monotonic() - started >= DELAY_S
    with pytest.raises(ValueError, match="negative"):
        proxy.set_slow(-1.0)

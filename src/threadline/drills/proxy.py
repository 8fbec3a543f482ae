"""The drill's TCP proxy between the services' SDK and the tracing backend.

A fault drill needs to take the backend away from the services without touching the
backend itself (other fleets may export to it) or the services (their SDK must see
the fault as it would in production). The services export to this proxy instead of
the server (``THREADLINE_ENDPOINT=http://<proxy address>``); the proxy relays every
byte both ways, and the drill switches it between three states:

- ``up``: a plain relay;
- ``down``: the backend is unreachable: open connections are cut and new ones are
  reset as soon as they are accepted (the SDK sees a connection error, as when the
  server's host is gone);
- ``slow``: every chunk the SDK sends waits ``delay_s`` before it is relayed, so each
  export request takes at least that much longer.

Threads, not asyncio: the proxy runs beside the drill's own blocking probe traffic,
and a relay thread per direction of a connection is the simplest bounded design
(``MAX_CONNECTIONS``); an SDK keeps one or two connections open per process.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import struct
import threading
import time
from typing import Final

# More concurrent connections than a drill's fleet opens; past it, new ones are reset
# (counted as refused) so a misdirected flood cannot start unbounded threads.
MAX_CONNECTIONS: Final = 256
CHUNK_BYTES: Final = 65_536
# How long a connection attempt to the backend may take before the client is reset.
CONNECT_TIMEOUT_S: Final = 5.0
# The accept loop wakes this often to notice ``close``.
ACCEPT_POLL_S: Final = 0.2
# SO_LINGER on, zero seconds: ``close`` sends a reset instead of an orderly FIN.
_RESET: Final = struct.pack("ii", 1, 0)


class ProxyState(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    SLOW = "slow"


class BackendProxy:
    """Relays ``listen`` to ``upstream``; ``state`` says how (see the module docstring).

    ``start`` binds (raising ``OSError``, e.g. ``PermissionError`` for a privileged
    port, before anything runs); ``close`` stops accepting and cuts every connection.
    """

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int]) -> None:
        self._listen = listen
        self._upstream = upstream
        self._lock = threading.Lock()  # guards the fields below
        self._state = ProxyState.UP
        self._delay_s = 0.0
        self._open: set[socket.socket] = set()
        self._closed = False
        self.accepted = 0
        self.refused = 0
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port is known once started, also for port 0)."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.getsockname()[:2]
        return str(host), int(port)

    @property
    def state(self) -> ProxyState:
        return self._state

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(self._listen)
            server.listen(64)
        except OSError:
            server.close()
            raise
        server.settimeout(ACCEPT_POLL_S)
        self._server = server
        self._thread = threading.Thread(target=self._accept, name="drill-proxy", daemon=True)
        self._thread.start()

    def set_up(self) -> None:
        with self._lock:
            self._state, self._delay_s = ProxyState.UP, 0.0

    def set_down(self) -> None:
        """The backend is gone: every open connection is cut now, new ones are reset."""
        with self._lock:
            self._state = ProxyState.DOWN
            doomed = list(self._open)
        for connection in doomed:
            _cut(connection)

    def set_slow(self, delay_s: float) -> None:
        if delay_s < 0:
            raise ValueError(f"delay must not be negative, got {delay_s}")
        with self._lock:
            self._state, self._delay_s = ProxyState.SLOW, delay_s

    def close(self) -> None:
        with self._lock:
            self._closed = True
            doomed = list(self._open)
        for connection in doomed:
            _cut(connection)
        if self._thread is not None:
            self._thread.join(ACCEPT_POLL_S * 5)
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> BackendProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- relay threads ------------------------------------------------------------

    def _accept(self) -> None:
        server = self._server
        assert server is not None  # set before the thread starts
        while not self._closed:
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed under us
            with self._lock:
                refuse = self._state is ProxyState.DOWN or len(self._open) >= MAX_CONNECTIONS
                if refuse:
                    self.refused += 1
                else:
                    self.accepted += 1
            if refuse:
                _reset(client)
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream, timeout=CONNECT_TIMEOUT_S)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._closed or self._state is ProxyState.DOWN:
                _reset(client)
                upstream.close()
                return
            self._open.update((client, upstream))
        threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
        self._pump(upstream, client, False)

    def _pump(self, source: socket.socket, target: socket.socket, outbound: bool) -> None:
        """Copy ``source`` to ``target`` until either side ends; outbound chunks (the
        SDK's requests) wait the delay of a slow backend."""
        try:
            while True:
                data = source.recv(CHUNK_BYTES)
                if not data:
                    break
                with self._lock:
                    delay = self._delay_s if outbound and self._state is ProxyState.SLOW else 0.0
                if delay:
                    time.sleep(delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _reset(source)
            _reset(target)


def _cut(connection: socket.socket) -> None:
    """End a relayed connection from outside its threads: ``shutdown`` wakes the relay
    blocked in ``recv`` (a bare ``close`` would not), which then resets both sides."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _reset(connection: socket.socket) -> None:
    """Close with a reset (no orderly shutdown): the peer sees the connection fail."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    with contextlib.suppress(OSError):
        connection.close()

"""A real Threadline server (uvicorn with its lifespan, real DuckDB file) on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn

from threadline.server.app import create_app
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

STARTUP_TIMEOUT_S: Final = 10.0
SHUTDOWN_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class LiveServer:
    url: str
    store: DuckDBStore
    settings: ServerSettings

    @property
    def sampling_url(self) -> str:
        return f"{self.url}/api/sampling"


@contextmanager
def live_server(db: Path, **overrides: Any) -> Iterator[LiveServer]:
    """Serve ``create_app`` (startup/shutdown hooks included) until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = ServerSettings(host="127.0.0.1", port=port, db=db, **overrides)
    store = DuckDBStore(db)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, store), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield LiveServer(f"http://127.0.0.1:{port}", store, settings)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        sock.close()
        store.close()

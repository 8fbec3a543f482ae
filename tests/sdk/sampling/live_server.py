"""A real Threadline server (``create_app`` under uvicorn) for the SDK to poll rules from."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import httpx
import uvicorn

from threadline.server.app import create_app
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

STARTUP_TIMEOUT_S: Final = 10.0


class RulesServer:
    """The server's address and a way to change its rules."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sampling_url = f"{url}/api/sampling"

    def put_rules(self, document: object) -> str:
        """Replace the rules; returns their new ETag."""
        response = httpx.put(self.sampling_url, json=document, timeout=10)
        assert response.status_code == 200, response.text
        return response.headers["ETag"]


@contextmanager
def rules_server(db: Path) -> Iterator[RulesServer]:
    """Serve a Threadline server over a DuckDB file at ``db`` until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    store = DuckDBStore(db)
    app = create_app(ServerSettings(host="127.0.0.1", port=port, db=db), store)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the rules server did not start")
            time.sleep(0.01)
        yield RulesServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        sock.close()
        store.close()

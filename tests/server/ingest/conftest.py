"""A real Threadline server (uvicorn, real DuckDB file) on a free loopback port."""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from threadline.server.app import create_app
from threadline.server.storage.duckdb import DuckDBStore
from threadline.settings import ServerSettings

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class RunningServer:
    url: str
    store: DuckDBStore
    settings: ServerSettings

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"


@contextmanager
def running_server(db: Path, **overrides: Any) -> Iterator[RunningServer]:
    """Serve ``create_app`` over a DuckDB file at ``db`` until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: uvicorn given a socket does not set it, and
    # without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = ServerSettings(host="127.0.0.1", port=port, db=db, **overrides)
    store = DuckDBStore(db, max_pending_batches=settings.write_queue_batches)
    config = uvicorn.Config(
        create_app(settings, store), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield RunningServer(f"http://127.0.0.1:{port}", store, settings)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        sock.close()
        store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("ingest") / "spans.duckdb") as running:
        yield running


def gzip_of_zeros(total: int, chunk: int = 1 << 20) -> bytes:
    """A valid gzip body that inflates to ``total`` zero bytes, built without inflating it.

    After a full flush a deflate stream starts afresh, so every 1 MiB block of zeros
    compresses to the same bytes; repeating them builds a gzip bomb in milliseconds.
    """
    zeros = bytes(chunk)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = total // chunk
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (blocks * chunk) & 0xFFFFFFFF)
    return header + first + repeated * (blocks - 1) + compressor.flush() + trailer

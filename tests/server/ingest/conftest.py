"""A real Threadline server (uvicorn, real DuckDB file) on a free loopback port."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest

from support.live_server import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("ingest") / "spans.duckdb") as running:
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

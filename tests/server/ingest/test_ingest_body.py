"""Content-Encoding handling: which codings are accepted and bounded decompression."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from threadline.server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from threadline.server.ingest.body import content_codings, decompress

from .conftest import gzip_of_zeros

PAYLOAD = b"spans " * 10_000


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        (None, ()),
        ("", ()),
        ("identity", ()),
        ("gzip", ("gzip",)),
        ("GZip", ("gzip",)),
        ("x-gzip", ("gzip",)),
        ("deflate", ("deflate",)),
        ("deflate, gzip", ("deflate", "gzip")),
    ],
)
def test_supported_content_encodings_are_recognised(
    header: str | None, codings: tuple[str, ...]
) -> None:
    """gzip and deflate (any case, in any stack) are accepted; identity means none."""
    assert content_codings(header) == codings


@pytest.mark.parametrize("header", ["br", "zstd", "gzip, br", "compress"])
def test_unsupported_content_encoding_is_415_naming_it(header: str) -> None:
    """An encoding we cannot undo is refused with 415 before the body is read."""
    with pytest.raises(UnsupportedMediaType, match="is not supported; use one of gzip, deflate"):
        content_codings(header)


@pytest.mark.parametrize(
    ("body", "codings"),
    [
        (gzip.compress(PAYLOAD), ("gzip",)),
        (gzip.compress(PAYLOAD[:100]) + gzip.compress(PAYLOAD[100:]), ("gzip",)),
        (zlib.compress(PAYLOAD), ("deflate",)),
        (zlib.compress(PAYLOAD, wbits=-zlib.MAX_WBITS), ("deflate",)),
        (gzip.compress(zlib.compress(PAYLOAD)), ("deflate", "gzip")),
        (PAYLOAD, ()),
    ],
    ids=["gzip", "gzip-members", "zlib-deflate", "raw-deflate", "stacked", "identity"],
)
def test_compressed_bodies_are_restored(body: bytes, codings: tuple[str, ...]) -> None:
    """gzip (also multi-member), zlib and raw deflate bodies decompress to the original."""
    assert decompress(body, codings, len(PAYLOAD)) == PAYLOAD


def test_decompressed_size_limit_is_exact() -> None:
    """A body that inflates to exactly the limit passes; one byte more is a 413."""
    body = gzip.compress(PAYLOAD)
    assert decompress(body, ("gzip",), len(PAYLOAD)) == PAYLOAD
    with pytest.raises(PayloadTooLarge, match="gzip-decompressed body is more than"):
        decompress(body, ("gzip",), len(PAYLOAD) - 1)


def test_gzip_bomb_is_stopped_at_the_limit() -> None:
    """1 GiB of zeros in a 1 MB gzip body is a 413, not a 1 GiB allocation."""
    bomb = gzip_of_zeros(1 << 30)
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge, match="limit is 8388608 bytes"):
            decompress(bomb, ("gzip",), 8 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


@pytest.mark.parametrize(
    ("body", "codings", "message"),
    [
        (b"definitely not gzip", ("gzip",), "not valid gzip data"),
        (gzip.compress(PAYLOAD)[:-20], ("gzip",), "gzip body is truncated"),
        (gzip.compress(PAYLOAD) + b"junk", ("gzip",), "not valid gzip data"),
        (zlib.compress(PAYLOAD) + b"junk", ("deflate",), "bytes after the end of its data"),
        (b"\x78\x9c\x07\x00", ("deflate",), "not valid deflate data"),
    ],
    ids=["garbage", "truncated", "gzip-trailing", "deflate-trailing", "bad-deflate"],
)
def test_corrupt_compressed_bodies_are_a_bad_request(
    body: bytes, codings: tuple[str, ...], message: str
) -> None:
    """A body that does not decompress cleanly is a 400 saying why."""
    with pytest.raises(BadRequest, match=message):
        decompress(body, codings, 1 << 20)


def test_empty_body_needs_no_decompression() -> None:
    """An empty request stays empty whatever encoding it declares."""
    assert decompress(b"", ("gzip",), 10) == b""

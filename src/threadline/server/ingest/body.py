"""Reading an OTLP request body: size limit while streaming, bounded decompression.

Two limits protect memory, both ``max_request_bytes``: the body as sent is read
chunk by chunk and abandoned as soon as it passes the limit (or at once when
``Content-Length`` already says it will), and a compressed body is inflated with
``max_length`` so a gzip bomb is stopped after at most ``limit + 1`` bytes of
output instead of being expanded whole. A third, ``max_decompression_ratio``, bounds
the output by a multiple of the bytes sent: a small bomb is stopped long before the
size limit, so the work a request costs stays proportionate to what it sent.

``read_body`` runs on the event loop and only copies bytes; ``decompress`` is
CPU work and runs in a worker thread. A body must arrive within ``body_timeout_s``
(408 otherwise): a client trickling bytes would hold its memory and connection for
as long as it liked.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Final

from starlette.requests import Request

from threadline.server.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

GZIP: Final = "gzip"
DEFLATE: Final = "deflate"
SUPPORTED_ENCODINGS: Final = (GZIP, DEFLATE)
# "x-gzip" is the old name HTTP/1.1 still asks recipients to treat as gzip (RFC 9110 §8.4.1.3).
_ALIASES: Final = {"x-gzip": GZIP}
_IDENTITY: Final = "identity"

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ZLIB_WBITS: Final = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS: Final = -zlib.MAX_WBITS


def content_codings(header: str | None) -> tuple[str, ...]:
    """The codings of a ``Content-Encoding`` header in the order they were applied.

    Anything but gzip, deflate and identity is a 415, decided before the body is read.
    """
    if not header:
        return ()
    codings: list[str] = []
    for raw in header.split(","):
        coding = raw.strip().lower()
        coding = _ALIASES.get(coding, coding)
        if coding in ("", _IDENTITY):
            continue
        if coding not in SUPPORTED_ENCODINGS:
            raise UnsupportedMediaType(
                f"Content-Encoding {raw.strip()!r} is not supported; "
                f"use one of {', '.join(SUPPORTED_ENCODINGS)} or none"
            )
        codings.append(coding)
    return tuple(codings)


def declared_length(request: Request, limit: int) -> int | None:
    """The body size ``Content-Length`` announces (``None`` if absent); 413 past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        return None
    if int(declared) > limit:
        raise PayloadTooLarge(_too_large("request body", int(declared), limit))
    return int(declared)


async def read_body(request: Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The body as sent (maybe compressed), refused with 413 as soon as it passes ``limit``.

    408 when it has not all arrived within ``timeout_s``; a client that goes away
    meanwhile raises starlette's ``ClientDisconnect``.
    """
    declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(_too_large("request body", size, limit, at_least=True))
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {timeout_s:g} s "
            f"({size} bytes received; body_timeout_s)"
        ) from None
    return b"".join(chunks)


def decompress(
    body: bytes, codings: tuple[str, ...], limit: int, max_ratio: int | None = None
) -> bytes:
    """Undo ``codings`` (last applied first), never producing more than ``limit`` bytes.

    With ``max_ratio`` the output is also bounded by ``max_ratio`` times the body sent.
    """
    if not body:
        # An empty request, whatever encoding it claims; nothing to inflate.
        return body
    setting = "max_request_bytes"
    if max_ratio is not None and codings and max_ratio * len(body) < limit:
        limit, setting = max_ratio * len(body), f"max_decompression_ratio {max_ratio}"
    for coding in reversed(codings):
        if coding == GZIP:
            body = _inflate(body, _GZIP_WBITS, limit, coding, members=True, setting=setting)
        else:
            wbits = _deflate_wbits(body)
            body = _inflate(body, wbits, limit, coding, members=False, setting=setting)
    return body


def _deflate_wbits(body: bytes) -> int:
    # HTTP "deflate" means the zlib format (RFC 9110 §8.4.1.2), but some clients
    # send raw deflate; a zlib stream starts with a header whose first two bytes,
    # read big-endian, are a multiple of 31 with compression method 8.
    if len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0:
        return _ZLIB_WBITS
    return _RAW_DEFLATE_WBITS


def _inflate(
    data: bytes,
    wbits: int,
    limit: int,
    coding: str,
    *,
    members: bool,
    setting: str = "max_request_bytes",
) -> bytes:
    """Inflate ``data``; with ``members`` concatenated gzip members are one body (RFC 1952)."""
    chunks: list[bytes] = []
    size = 0
    pending = data
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            while pending:
                # Ask for one byte more than the budget left: getting it proves the
                # body is over the limit without inflating any further.
                budget = limit - size + 1
                chunk = inflater.decompress(pending, budget)
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        _too_large(
                            f"{coding}-decompressed body", size, limit, at_least=True, name=setting
                        )
                    )
                chunks.append(chunk)
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
        except zlib.error as exc:
            raise BadRequest(f"body is not valid {coding} data: {exc}") from exc
        if not inflater.eof:
            raise BadRequest(f"{coding} body is truncated")
        pending = inflater.unused_data
        if not pending:
            return b"".join(chunks)
        if not members:
            raise BadRequest(f"{coding} body has {len(pending)} bytes after the end of its data")


def _too_large(
    what: str, size: int, limit: int, *, at_least: bool = False, name: str = "max_request_bytes"
) -> str:
    amount = f"more than {limit}" if at_least else str(size)
    return f"{what} is {amount} bytes; the limit is {limit} bytes ({name})"

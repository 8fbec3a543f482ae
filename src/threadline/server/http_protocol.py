"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn closes a connection that stays idle between requests (``timeout_keep_alive``)
but waits forever for the rest of a request's headers once any byte has arrived, so
a client sending a header line every few seconds holds a connection and its buffer
for as long as it likes (a "slowloris"). This subclass closes a connection whose
request headers are not complete ``header_timeout_s`` after its first byte (or after
the connection opened). Bodies have their own deadline where they are read
(``ingest.body.read_body``).

Only the asyncio ``Protocol`` methods are extended; uvicorn does the HTTP.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

from threadline.settings import ConfigError

log = logging.getLogger(__name__)


class HeaderDeadlineProtocol(H11Protocol):
    """``H11Protocol`` closing connections whose request headers arrive too slowly."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_request():
            self._disarm()
        elif self._header_timer is None:
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._header_timer = asyncio.get_running_loop().call_later(
            self.header_timeout_s, self._headers_too_slow
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_request() or self.transport.is_closing():
            return
        log.info(
            "closed a connection from %s: request headers not complete within %g s "
            "(header_timeout_s)",
            self.client[0] if self.client else "?",
            self.header_timeout_s,
        )
        self.transport.close()


def protocol_with_header_timeout(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class uvicorn is given (``http=``) for a server's ``header_timeout_s``."""
    if timeout_s <= 0:
        raise ConfigError(f"header_timeout_s must be more than 0, got {timeout_s}")
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": timeout_s}
    )

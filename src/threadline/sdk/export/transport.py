"""One HTTP(S) connection to the OTLP endpoint, kept open between exports.

Standard library ``http.client`` rather than ``requests``: it is what the export
thread needs and nothing else (no session machinery, no instrumented client that
would trace our own exports). TLS uses the system trust store, or ``ca_file``; a
client certificate (``client_cert`` + ``client_key``) is presented when configured.
Any failure to connect, send or read closes the connection and raises
:class:`TransportError`; the next request opens a new one.
"""

from __future__ import annotations

# Imported here, before any export thread exists: ``getaddrinfo`` encodes the host
# with the "idna" codec, whose module Python imports on first use. If that first use
# is on a thread and the host forks meanwhile (gunicorn --preload forks its workers
# right after configure()), the child inherits a half-imported ``encodings.idna``:
# every lookup of the codec then fails ("unknown encoding: idna", cached by
# ``encodings``) and that worker can never connect to export.
import encodings.idna  # noqa: F401
import http.client
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from threadline import conventions

# Fast gzip: level 1 compresses OTLP spans to ~15% of their size at a fraction of the
# CPU of level 9, and this runs in the host service's process.
GZIP_LEVEL: Final = 1
_GZIP_WBITS: Final = 31  # zlib's way of asking for a gzip header and trailer

USER_AGENT: Final = "threadline-sdk"


class TransportError(Exception):
    """The request did not get an HTTP answer (refused, reset, timed out, TLS failure)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Where and how to send; built from the SDK settings."""

    endpoint: str  # base URL; requests go to <endpoint><path>
    timeout_s: float
    compression: str = "gzip"  # "gzip" or "none"
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = conventions.TRACES_PATH  # appended to the endpoint's path


class HeadersError(ValueError):
    """A headers setting that is not comma-separated ``key=value`` pairs."""


def parse_headers(text: str) -> dict[str, str]:
    """``key=value`` pairs separated by commas, values URL-decoded (the format of
    ``OTEL_EXPORTER_OTLP_HEADERS``, W3C Baggage-like)."""
    headers: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HeadersError(f"expected key=value, got {item.strip()!r}")
        headers[unquote(key.strip())] = unquote(value.strip())
    return headers


class HttpTransport:
    """POSTs OTLP protobuf bodies; not thread-safe (the worker thread owns it)."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        parts = urlsplit(config.endpoint)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or conventions.DEFAULT_HOST
        self._port = parts.port or (443 if self._https else 80)
        self.path = parts.path.rstrip("/") + config.path
        self._context = tls_context(config) if self._https else None
        self._connection: http.client.HTTPConnection | None = None
        self._gzip = config.compression == "gzip"
        # The same for every request: built once (http.client only reads them).
        self._headers = {
            **config.headers,
            "Content-Type": "application/x-protobuf",
            "User-Agent": USER_AGENT,
        }
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"

    def post(self, body: bytes) -> Answer:
        """Send one export request; raises :class:`TransportError` when no answer came."""
        if self._gzip:
            body = zlib.compress(body, GZIP_LEVEL, _GZIP_WBITS)
        connection = self._connection or self._connect()
        try:
            connection.request("POST", self.path, body=body, headers=self._headers)
            response = connection.getresponse()
            answer_body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self.close()
        return Answer(response.status, response.getheader("Retry-After"), answer_body)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        timeout = self.config.timeout_s
        if self._https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._connection = connection
        return connection


def tls_context(config: TransportConfig) -> ssl.SSLContext:
    """TLS settings: system roots or ``ca_file``; the client certificate if configured."""
    context = ssl.create_default_context(cafile=config.ca_file or None)
    if config.client_cert:
        context.load_cert_chain(config.client_cert, config.client_key or None)
    return context

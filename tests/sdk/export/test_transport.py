"""HTTP transport: gzip bodies, https with a private CA, and client certificates (mTLS)."""

from __future__ import annotations

import gzip
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support.missing import require_executable
from threadline.sdk.export.transport import HttpTransport, TransportConfig, TransportError


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        answer = body + (b"|client-cert" if peer else b"")
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def _server(context: ssl.SSLContext | None = None) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA that signed a server certificate for 127.0.0.1 and a client certificate."""
    require_executable("openssl")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        extra = ["-extfile", "san.ext"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *extra, cwd=d)  # fmt: skip
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


def _server_context(pki: Pki, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    return context


def test_plain_http_sends_gzip_and_reuses_the_connection() -> None:
    """Bodies are gzip-compressed on the wire, and two posts share one connection."""
    with _server() as port:
        transport = HttpTransport(TransportConfig(f"http://127.0.0.1:{port}", timeout_s=5))
        first = transport.post(b"hello")
        connection = transport._connection
        second = transport.post(b"again")
        assert (first.status, first.body) == (200, b"hello")
        assert (second.status, second.body) == (200, b"again")
        assert connection is not None
        assert transport._connection is connection
        transport.close()


def test_refused_connection_raises_transport_error() -> None:
    """Nothing listening is a TransportError (retryable), not an HTTP status."""
    from threadline.demo.processes import free_port

    transport = HttpTransport(TransportConfig(f"http://127.0.0.1:{free_port()}", timeout_s=2))
    with pytest.raises(TransportError):
        transport.post(b"x")


def test_https_with_the_configured_ca_file(pki: Pki) -> None:
    """An https endpoint signed by a private CA is trusted through ca_file, and only then."""
    with _server(_server_context(pki, require_client_cert=False)) as port:
        url = f"https://127.0.0.1:{port}"
        trusted = HttpTransport(TransportConfig(url, timeout_s=5, ca_file=str(pki.ca)))
        assert trusted.post(b"tls").body == b"tls"
        trusted.close()
        untrusted = HttpTransport(TransportConfig(url, timeout_s=5))
        with pytest.raises(TransportError):
            untrusted.post(b"tls")


def test_client_certificate_is_presented_for_mutual_tls(pki: Pki) -> None:
    """With client_cert and client_key, a server that requires a client certificate accepts us."""
    with _server(_server_context(pki, require_client_cert=True)) as port:
        url = f"https://127.0.0.1:{port}"
        config = TransportConfig(
            url,
            timeout_s=5,
            ca_file=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
        )
        transport = HttpTransport(config)
        assert transport.post(b"m").body == b"m|client-cert"
        transport.close()
        without = HttpTransport(TransportConfig(url, timeout_s=5, ca_file=str(pki.ca)))
        with pytest.raises(TransportError):
            without.post(b"m")


class _HeaderEcho(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = (self.headers.get("Authorization") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_configured_headers_are_sent_with_every_request() -> None:
    """Headers in OTEL_EXPORTER_OTLP_HEADERS format (URL-encoded values) reach the endpoint."""
    from threadline.sdk.export.transport import parse_headers

    headers = parse_headers("Authorization=Bearer%20secret-token, x-tenant = shop")
    assert headers == {"Authorization": "Bearer secret-token", "x-tenant": "shop"}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HeaderEcho)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        transport = HttpTransport(TransportConfig(url, timeout_s=5, headers=headers))
        assert transport.post(b"x").body == b"Bearer secret-token"
        transport.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_malformed_headers_are_a_config_error() -> None:
    """A headers value that is not key=value pairs fails configure, naming the setting."""
    from threadline.sdk.export.pipeline import validate
    from threadline.settings import ConfigError, SdkSettings

    with pytest.raises(ConfigError, match="headers"):
        validate(SdkSettings(headers="Authorization"))


def test_otel_header_variable_is_used_when_the_setting_is_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Services set up for the stock exporter keep sending their token through Threadline."""
    from threadline.sdk.export.pipeline import transport_config
    from threadline.settings import SdkSettings

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20t0ken")
    assert transport_config(SdkSettings()).headers == {"Authorization": "Bearer t0ken"}
    own = transport_config(SdkSettings(headers="Authorization=Bearer%20mine"))
    assert own.headers == {"Authorization": "Bearer mine"}

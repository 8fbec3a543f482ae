"""`threadline serve --tls-cert --tls-key`: HTTPS only, verified by the stock OTLP exporter."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from support.processes import threadline_serve

from .conftest import ADMIN_TOKEN, INGEST_TOKEN, TOKENS, bearer


@dataclass(frozen=True, slots=True)
class TlsServer:
    url: str
    plain_url: str
    cert: Path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "threadline test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_certificate(directory)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    env = {**os.environ, "THREADLINE_TOKENS": TOKENS}
    with threadline_serve(directory, *tls, env=env, tls_ca=cert) as served:
        yield TlsServer(url=served.url, plain_url=f"http://127.0.0.1:{served.port}", cert=cert)


def export_one_trace(exporter: OTLPSpanExporter) -> tuple[str, SpanExportResult]:
    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tls-client"}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    with provider.get_tracer("tls").start_as_current_span("over tls") as span:
        trace_id = format_trace_id(span.get_span_context().trace_id)
    provider.shutdown()
    result = exporter.export(finished.get_finished_spans())
    exporter.shutdown()
    return trace_id, result


def test_stock_exporter_sends_over_verified_tls(
    tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OTLP exporter, trusting the server's certificate, delivers spans over HTTPS."""
    # requests lets these variables override a session's own CA file (requests#3829).
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    exporter = OTLPSpanExporter(
        endpoint=f"{tls_server.url}/v1/traces",
        certificate_file=str(tls_server.cert),
        headers=bearer(INGEST_TOKEN),
        timeout=10,
    )
    trace_id, result = export_one_trace(exporter)
    assert result is SpanExportResult.SUCCESS
    stored = httpx.get(
        f"{tls_server.url}/api/traces/{trace_id}",
        headers=bearer(ADMIN_TOKEN),
        verify=ssl.create_default_context(cafile=tls_server.cert),
        timeout=10,
    )
    assert stored.status_code == 200
    assert [span["name"] for span in stored.json()["spans"]] == ["over tls"]


def test_plain_http_gets_no_answer(tls_server: TlsServer) -> None:
    """A client speaking plain HTTP to the TLS port is not served."""
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{tls_server.plain_url}/api/stats", headers=bearer(ADMIN_TOKEN), timeout=5)


def test_exporter_that_does_not_trust_the_certificate_fails(tls_server: TlsServer) -> None:
    """Without the certificate the exporter refuses the server: nothing is sent in clear."""
    exporter = OTLPSpanExporter(
        endpoint=f"{tls_server.url}/v1/traces", headers=bearer(INGEST_TOKEN), timeout=1
    )
    _, result = export_one_trace(exporter)
    assert result is SpanExportResult.FAILURE

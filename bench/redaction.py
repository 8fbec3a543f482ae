"""What redaction costs per span, in the SDK and at ingest, with and without personal data.

Run: ``python bench/redaction.py [--spans N] [--rounds K]``

A typical server span has ten attributes (method, URL, route, status, host, user agent,
port, session, user, order id). Measured, interleaved round by round so machine load
hits every variant alike, as the median over rounds of the time per span:

- the rule engine alone (``Redactor.attributes``) on a clean span whose values repeat
  (the scan cache hits), a clean span whose URL and ids change on every span (the cache
  misses), and a span carrying personal data (e-mail, card, bearer token, ``?token=``);
- ``redact_span`` (the per-span step on a ``ReadableSpan``: engine, name, status, events,
  and a copy when something changed) and ``redact_compact`` (the same step on the export
  pipeline's compact records, journey keys included: what ``configure()`` runs, on the
  export worker thread, right before encoding), against the cost of the span itself
  (start + end on a bare TracerProvider) and of encoding it, with the stock OTLP encoder
  and with Threadline's own;
- ingest: decoding OTLP requests of such spans with and without the ingest redactor.

Printed: microseconds per span and the ratios measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any, Final

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from threadline.redaction import RedactionRules, Redactor
from threadline.sdk.export.compact import CompactSpan, capture
from threadline.sdk.export.encoder import SpanEncoder
from threadline.sdk.redaction_processor import redact_compact, redact_span
from threadline.server.ingest.decode import parse_protobuf, request_to_batch
from threadline.server.ingest.redact import IngestRedactor

REQUEST_SPANS: Final = 500
USER: Final = "u_5f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f"
JOURNEY: Final = (("session.id", "s-8f3a2c"), ("user.id", USER))


def clean_attributes(n: int) -> dict[str, Any]:
    """A server span's attributes; ``n`` varies the URL and ids (0: always the same)."""
    return {
        "http.request.method": "GET",
        "url.full": f"https://shop.example/api/orders/{8812 + n}?page=2&sort=date",
        "http.route": "/api/orders/{id}",
        "http.response.status_code": 200,
        "server.address": "shop.example",
        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
        "server.port": 443,
        "session.id": f"s-{n:08x}",
        "user.id": USER,
        "order.id": 8812 + n,
    }


def personal_attributes(n: int) -> dict[str, Any]:
    """The same span carrying personal data and credentials in four places."""
    attributes = clean_attributes(n)
    attributes["url.full"] = f"https://shop.example/api/orders/{8812 + n}?token=t0k3n{n}&page=2"
    attributes["http.request.header.authorization"] = (f"Bearer abc.def.{n}",)
    attributes["customer.note"] = f"ship to bob{n}@example.com, card 4111 1111 1111 1111"
    attributes["customer.email"] = f"bob{n}@example.com"
    return attributes


def finished_spans(make: Callable[[int], dict[str, Any]], count: int) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for n in range(count):
        tracer.start_span("GET /api/orders/{id}", kind=SpanKind.SERVER, attributes=make(n)).end()
    provider.shutdown()
    return list(exporter.get_finished_spans())


def per_span_us(body: Callable[[], object], spans: int) -> float:
    started = time.perf_counter()
    body()
    return (time.perf_counter() - started) / spans * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n = args.spans

    redactor = Redactor(RedactionRules(), "bench-key")
    ingest = IngestRedactor(redactor)
    same = [clean_attributes(0) for _ in range(n)]
    varying = [clean_attributes(i) for i in range(n)]
    personal = [personal_attributes(i) for i in range(n)]
    clean_spans = finished_spans(clean_attributes, n)
    personal_spans = finished_spans(personal_attributes, n)
    requests = {
        "clean": [
            parse_protobuf(encode_spans(clean_spans[i : i + REQUEST_SPANS]).SerializeToString())
            for i in range(0, n, REQUEST_SPANS)
        ],
        "personal": [
            parse_protobuf(encode_spans(personal_spans[i : i + REQUEST_SPANS]).SerializeToString())
            for i in range(0, n, REQUEST_SPANS)
        ],
    }
    clean_records = [capture(span, JOURNEY) for span in clean_spans]
    personal_records = [capture(span, JOURNEY) for span in personal_spans]
    encoder = SpanEncoder()
    bare = TracerProvider()
    tracer = bare.get_tracer("bench")
    attributes = clean_attributes(0)

    def engine(rows: list[dict[str, Any]]) -> Callable[[], object]:
        return lambda: [redactor.attributes(row, []) for row in rows]

    def spans_step(spans: list[ReadableSpan]) -> Callable[[], object]:
        return lambda: [redact_span(span, redactor) for span in spans]

    def records_step(records: list[CompactSpan]) -> Callable[[], object]:
        return lambda: [redact_compact(record, redactor) for record in records]

    def decode(kind: str, with_redactor: bool) -> Callable[[], object]:
        chosen = ingest if with_redactor else None
        return lambda: [request_to_batch(r, redactor=chosen) for r in requests[kind]]

    def span_itself() -> None:
        for _ in range(n):
            tracer.start_span(
                "GET /api/orders/{id}", kind=SpanKind.SERVER, attributes=attributes
            ).end()

    variants: dict[str, Callable[[], object]] = {
        "engine, clean, repeating values": engine(same),
        "engine, clean, varying URL/ids": engine(varying),
        "engine, personal data": engine(personal),
        "redact_span, clean": spans_step(clean_spans),
        "redact_span, personal data": spans_step(personal_spans),
        "redact_compact, clean": records_step(clean_records),
        "redact_compact, personal data": records_step(personal_records),
        "span start+end, bare SDK": span_itself,
        "OTLP encode (stock encoder)": lambda: [
            encode_spans(clean_spans[i : i + REQUEST_SPANS]).SerializeToString()
            for i in range(0, n, REQUEST_SPANS)
        ],
        "OTLP encode (threadline encoder)": lambda: [
            encoder.encode_request(clean_records[i : i + REQUEST_SPANS])
            for i in range(0, n, REQUEST_SPANS)
        ],
        "ingest decode, clean": decode("clean", False),
        "ingest decode+redact, clean": decode("clean", True),
        "ingest decode, personal data": decode("personal", False),
        "ingest decode+redact, personal data": decode("personal", True),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, body in variants.items():
            results[name].append(per_span_us(body, n))
    median = {name: statistics.median(times) for name, times in results.items()}

    print(f"{n} spans per variant, median of {args.rounds} interleaved rounds (µs per span)")
    for name, value in median.items():
        print(f"  {name:40s} {value:8.2f}")
    span_cost = median["span start+end, bare SDK"]
    encode_cost = median["OTLP encode (stock encoder)"]
    own_encode_cost = median["OTLP encode (threadline encoder)"]
    print("ratios (redact_compact runs on the export worker, not on the span's thread)")
    for name in (
        "redact_span, clean",
        "redact_span, personal data",
        "redact_compact, clean",
        "redact_compact, personal data",
    ):
        print(
            f"  {name:40s} {median[name] / span_cost:6.1%} of a span's start+end, "
            f"{median[name] / encode_cost:6.1%} of its stock OTLP encoding"
        )
    for kind in ("clean", "personal data"):
        worker = median[f"redact_compact, {kind}"] + own_encode_cost
        print(f"  worker redact+encode, {kind:18s} / stock encode = {worker / encode_cost:5.2f}")
    for kind in ("clean", "personal data"):
        plain = median[f"ingest decode, {kind}"]
        redacted = median[f"ingest decode+redact, {kind}"]
        print(f"  ingest, {kind:32s} decode+redact / decode = {redacted / plain:5.2f}")


if __name__ == "__main__":
    main()

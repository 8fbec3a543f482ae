"""One table of redaction cases, run both at ingest and in the SDK.

Each case is one span made by the real OpenTelemetry SDK, under its own resource and
instrumentation scope, carrying a secret or a piece of personal data in one place a
span can carry text. ``secrets`` must appear nowhere in what is stored (ingest) or
sent (SDK); ``kept`` must appear, so a case cannot pass by losing the span or by
masking everything; ``listed`` must be in the span's ``threadline.redacted``.

tests/server/ingest/test_ingest_redaction.py sends these spans to a real server with
the stock OTLP exporter; tests/sdk/test_redaction_processor.py runs them through the
SDK's export step (compact record, redaction, Threadline's OTLP encoder).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, Status, StatusCode

# The server's default max_attribute_value_length: values longer are cut at ingest.
CUT_AT: Final = 32_768
CASE_KEY: Final = "case.id"


@dataclass(frozen=True, slots=True)
class Case:
    """One span, what must be gone from it, and what must still be there."""

    id: str
    secrets: tuple[str, ...]
    kept: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    name: str = "case"
    attributes: Mapping[str, Any] = field(default_factory=dict)
    event: tuple[str, Mapping[str, Any]] | None = None
    link_attributes: Mapping[str, Any] | None = None
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope: str = "redaction-cases"
    status: str = ""
    # No rule may match anything in this span (false-positive checks).
    clean: bool = False


CASES: Final[tuple[Case, ...]] = (
    # -- every part of a span is scanned, and only names are listed ----------------------
    Case(
        "span name",
        secrets=("bob@example.com", "4111 1111 1111 1111"),
        kept=("charge [REDACTED:email] ****1111",),
        listed=("name",),
        name="charge bob@example.com 4111 1111 1111 1111",
    ),
    Case(
        "event name with an e-mail and a card",
        secrets=("zoe@example.com", "4111111111111111"),
        kept=("sent to [REDACTED:email] card ****1111", "attempt"),
        listed=("events.name",),
        event=("sent to zoe@example.com card 4111111111111111", {"attempt": "2", "to": "zoe"}),
    ),
    Case(
        "event attribute, listed under the redacted event name",
        secrets=("yan@example.com",),
        kept=("[REDACTED:email]",),
        listed=("events.name", "events.mail [REDACTED:email].note"),
        event=("mail yan@example.com", {"note": "cc yan@example.com"}),
    ),
    Case(
        "attribute keys",
        secrets=("kim@example.com", "4111111111111111"),
        kept=("vip:[REDACTED:email]", "vip"),
        listed=("vip:[REDACTED:email]", "****1111"),
        attributes={"vip:kim@example.com": "vip", "4111111111111111": "pan as key"},
    ),
    Case(
        "link attributes",
        secrets=("eve@example.com", "link-pass-4"),
        kept=("from [REDACTED:email]",),
        listed=("links.note", "links.peer.url"),
        link_attributes={
            "note": "from eve@example.com",
            "peer.url": "https://peer.example/x?password=link-pass-4",
        },
    ),
    Case(
        "resource attributes",
        secrets=("ops-lead@example.com", "res-pass-9"),
        kept=("postgresql://REDACTED:REDACTED@db/x",),
        resource={
            "deploy.owner": "ops-lead@example.com",
            "db.url": "postgresql://svc:res-pass-9@db/x",
        },
    ),
    Case(
        "scope name",
        secrets=("carol@example.com",),
        kept=("billing for [REDACTED:email]",),
        listed=("scope.name",),
        scope="billing for carol@example.com",
    ),
    Case(
        "status message",
        secrets=("4111 1111 1111 1111", "dan@example.com"),
        kept=("declined ****1111 for [REDACTED:email]",),
        listed=("status.message",),
        status="declined 4111 1111 1111 1111 for dan@example.com",
    ),
    Case(
        "a client's threadline.redacted exempts nothing and leaks nothing",
        secrets=("mallory@example.com", "mallory-pass"),
        kept=("for [REDACTED:email]",),
        listed=("note", "db.password"),
        attributes={
            "threadline.redacted": ["note", "db.password", "mallory@example.com"],
            "note": "for mallory@example.com",
            "db.password": "mallory-pass",
        },
    ),
    # -- URL secrets in every URL-bearing field -------------------------------------------
    Case(
        "url.full with ;-separated parameters and pwd",
        secrets=("hunter2", "semi-pass"),
        kept=("https://shop.example/p?pwd=REDACTED;page=2;pass=REDACTED",),
        listed=("url.full",),
        attributes={"url.full": "https://shop.example/p?pwd=hunter2;page=2;pass=semi-pass"},
    ),
    Case(
        "http.url with api_key and access_token",
        secrets=("AKIA-api-key-1", "tok-999"),
        kept=("api_key=REDACTED&access_token=REDACTED&page=1",),
        attributes={
            "http.url": "https://api.example/v1?api_key=AKIA-api-key-1&access_token=tok-999&page=1"
        },
    ),
    Case(
        "url.original",
        secrets=("orig-pass-3",),
        kept=("/login?password=REDACTED&next=%2Fhome",),
        attributes={"url.original": "/login?password=orig-pass-3&next=%2Fhome"},
    ),
    Case(
        "referer header",
        secrets=("oauth-code-42",),
        kept=("https://idp.example/cb?code=REDACTED&state=ok",),
        attributes={
            "http.request.header.referer": ("https://idp.example/cb?code=oauth-code-42&state=ok",)
        },
    ),
    Case(
        "span name with a query string",
        secrets=("reset-token-77",),
        kept=("GET /reset?token=REDACTED&lang=en",),
        name="GET /reset?token=reset-token-77&lang=en",
    ),
    Case(
        "exception message",
        secrets=("exc-key-55", "exc-pass-56"),
        kept=("fetch https://api.example/v1?api_key=REDACTED failed",),
        event=(
            "exception",
            {
                "exception.type": "ConnectionError",
                "exception.message": "fetch https://api.example/v1?api_key=exc-key-55 failed "
                "via mysql://root:exc-pass-56@db",
            },
        ),
    ),
    Case(
        "connection strings",
        secrets=("pg-pass-1", "redis-pass-2", "p@ss-with-at"),
        kept=("@db:5432/shop", "@cache:6379/0"),
        attributes={
            "db.connection_string": "postgresql://app:pg-pass-1@db:5432/shop",
            "cache.url": "redis://:redis-pass-2@cache:6379/0",
            "mq.url": "amqp://guest:p@ss-with-at@mq:5672/",
        },
    ),
    Case(
        "db.statement holding password=",
        secrets=("stmt-pass-3", "quoted pass 4"),
        kept=("host=db user=app password=REDACTED", "password='REDACTED'"),
        attributes={
            "db.statement": "SELECT dblink_connect('host=db user=app password=stmt-pass-3'); "
            "ALTER ROLE app WITH password='quoted pass 4'",
        },
    ),
    Case(
        "every Authorization scheme",
        secrets=("tok-abc-123456", "6629fae49393a05397450978507c4ef1", "mixed.case-token-9"),
        kept=("Token [REDACTED]", "Digest [REDACTED]", "bEaReR [REDACTED]"),
        attributes={
            "log.first": "retry with Authorization: Token tok-abc-123456",
            "log.second": 'Authorization: Digest username="bob", realm="shop", '
            'response="6629fae49393a05397450978507c4ef1"',
            "log.third": "header was bEaReR mixed.case-token-9",
        },
    ),
    # -- cards and e-mail addresses in every spelling --------------------------------------
    Case(
        "cards with dots and spaces",
        secrets=("4111.1111.1111.1111", "5555 5555 5555 4444"),
        kept=("card ****1111 exp 12/25", "****4444"),
        attributes={
            "note.dots": "card 4111.1111.1111.1111 exp 12/25",
            "note.spaces": "5555 5555 5555 4444",
        },
    ),
    Case(
        "cards as numbers and bytes",
        secrets=("4111111111111111", "5555555555554444", "378282246310005"),
        kept=("****1111", "****4444", "****0005"),
        attributes={
            "payment.pan": 4111111111111111,
            "payment.pan_float": 5555555555554444.0,
            "payment.raw": b"378282246310005",
        },
    ),
    Case(
        "internationalised and percent-encoded e-mail",
        secrets=("jörg.müller@bücher.de", "用户@例子.广告", "bob.pct%40example.com"),
        kept=("to [REDACTED:email]",),
        attributes={
            "mail.to": "to jörg.müller@bücher.de",
            "mail.cc": "用户@例子.广告",
            "search.query": "q=bob.pct%40example.com",
        },
    ),
    # -- redaction runs before truncation ---------------------------------------------------
    Case(
        "an e-mail address where a long value is cut",
        secrets=("zelda",),
        kept=("xxxx",),
        attributes={"log.body": "x" * (CUT_AT - 8) + " zelda.quux@example.com and more"},
    ),
    Case(
        "a card number where a long value is cut",
        secrets=("4111 1111 11",),
        kept=("xxxx",),
        attributes={"log.body": "x" * (CUT_AT - 13) + " 4111 1111 1111 1111 and more"},
    ),
    # -- false positives: ordinary values stay as they are -----------------------------------
    Case(
        "ordinary numbers, at-signs and parameters are kept",
        secrets=(),
        kept=(
            "8080",
            "1500000000000",
            "4111111111111112",
            "0.4111111111111111",
            "@here ships pkg@1.2.3 to user@localhost",
            "status code=500 max_tokens=100",
            "https://shop.example/search?q=shoes&page=2",
            "bearer authentication is required",
        ),
        attributes={
            "server.port": 8080,
            "duration_ns": 1500000000000,
            "order.total_cents": 4111111111111112,
            "ratio": 0.4111111111111111,
            "note": "@here ships pkg@1.2.3 to user@localhost",
            "log.line": "status code=500 max_tokens=100",
            "url.full": "https://shop.example/search?q=shoes&page=2",
            "error.hint": "bearer authentication is required",
        },
        clean=True,
    ),
)


def case_spans(case: Case) -> list[ReadableSpan]:
    """The finished span of ``case``, made by a real TracerProvider of its own."""
    exporter = InMemorySpanExporter()
    resource = Resource.create(
        {"service.name": "redaction-cases", CASE_KEY: case.id, **dict(case.resource)}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    links = []
    if case.link_attributes is not None:
        peer = SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True)
        links.append(Link(peer, dict(case.link_attributes)))
    span = provider.get_tracer(case.scope).start_span(
        case.name,
        attributes={CASE_KEY: case.id, **dict(case.attributes)},
        links=links,
    )
    if case.event is not None:
        span.add_event(case.event[0], dict(case.event[1]))
    if case.status:
        span.set_status(Status(StatusCode.ERROR, case.status))
    span.end()
    provider.shutdown()
    return list(exporter.get_finished_spans())

"""Logs joined to traces: std logging and structlog records carry trace, span and journey."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import trace

import threadline
from threadline.sdk.logs import TraceContextFilter, add_trace_context, install_log_record_factory
from threadline.testing import SpanCapture

tracer = trace.get_tracer("tests.logs")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = ("trace_id", "span_id", "session.id", "user.id")
        return json.dumps({"msg": record.getMessage(), **{k: getattr(record, k) for k in fields}})


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("tests.logs.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_std_logging_json_carries_trace_and_journey(
    threadline_spans: SpanCapture, json_log: tuple[logging.Logger, io.StringIO]
) -> None:
    """A record logged inside a span and journey has its ids as JSON fields; outside, empty ones."""
    logger, stream = json_log
    with threadline.journey(session_id="s-log"), tracer.start_as_current_span("work") as span:
        logger.info("inside")
    logger.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    context = span.get_span_context()
    assert inside == {
        "msg": "inside",
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "session.id": "s-log",
        "user.id": "",
    }
    assert outside == {
        "msg": "outside",
        "trace_id": "",
        "span_id": "",
        "session.id": "",
        "user.id": "",
    }


def test_record_factory_stamps_every_record_for_format_strings(
    threadline_spans: SpanCapture,
) -> None:
    """With the factory installed (configure() does it), %-format strings can use the fields."""
    install_log_record_factory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(session.id)s %(trace_id)s %(message)s"))
    logger = logging.getLogger("tests.logs.factory")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with threadline.journey(session_id="s-fmt"), tracer.start_as_current_span("w") as span:
            logger.warning("hello")
    finally:
        logger.removeHandler(handler)
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert stream.getvalue().strip() == f"s-fmt {trace_id} hello"


def test_structlog_processor_adds_the_fields_to_json(threadline_spans: SpanCapture) -> None:
    """structlog's JSON output keeps trace_id, span_id and the journey as fields."""
    stream = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[add_trace_context, structlog.processors.JSONRenderer()],
    )
    with (
        threadline.journey(session_id="s-struct", user_id="u-1"),
        tracer.start_as_current_span("w") as span,
    ):
        logger.info("paid", amount=3)
    event = json.loads(stream.getvalue())
    assert event["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert event["span_id"] == f"{span.get_span_context().span_id:016x}"
    assert event["session.id"] == "s-struct"
    assert event["user.id"]
    assert event["user.id"] != "u-1"  # pseudonymised in baggage
    assert event["amount"] == 3

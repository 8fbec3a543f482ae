"""The SDK's log export against a real Threadline server: records carry the current
trace, span and journey, redaction runs on body and attributes, and a flood of records
is dropped and counted in the log queue without blocking the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import TracerProvider

from support.live_server import LiveServer, live_server
from threadline.redaction.configured import redactor_from_settings
from threadline.sdk import guard
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.export.transport import TransportConfig
from threadline.sdk.log_export.handler import LogExportHandler
from threadline.server.log_batch import LogQuery
from threadline.settings import SdkSettings

WAIT_S: Final = 30.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb") as running:
        yield running


def handler_for(url: str, *, queue_size: int = 1024, redact: bool = True) -> LogExportHandler:
    return LogExportHandler(
        TransportConfig(endpoint=url, timeout_s=5.0),
        level=logging.WARNING,
        queue_size=queue_size,
        batch_size=64,
        delay_s=0.05,
        retry=RetryPolicy(deadline_s=2.0, initial_backoff_s=0.05),
        shutdown_timeout_s=5.0,
        resource={"service.name": "checkout"},
        pseudonymize_user_id=lambda user: f"pseudo:{user}",
        redactor=redactor_from_settings(SdkSettings()) if redact else None,
    )


def logger_with(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.sdk.logs.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def test_records_carry_the_span_and_the_journey(server: LiveServer) -> None:
    """A WARNING inside a span and a journey arrives with both; INFO is not exported."""
    handler = handler_for(server.url)
    logger = logger_with(handler)
    journey = baggage.set_baggage("user.id", "ann", baggage.set_baggage("session.id", "s-7"))
    token = context.attach(journey)
    try:
        with TracerProvider().get_tracer("t").start_as_current_span("pay") as span:
            logger.info("not exported")
            logger.warning("card %s declined", "visa", extra={"order.id": "o-9"})
            ids = span.get_span_context()
    finally:
        context.detach(token)
    assert handler.drain(WAIT_S)
    handler.stop()
    [stored] = server.store.logs(LogQuery())
    assert stored.body == "card visa declined"
    assert (stored.trace_id, stored.span_id) == (f"{ids.trace_id:032x}", f"{ids.span_id:016x}")
    assert (stored.session_id, stored.user_id) == ("s-7", "pseudo:ann")
    assert stored.service_name == "checkout"
    assert (stored.severity_number, stored.severity_text) == (13, "WARNING")
    assert stored.attributes["order.id"] == "o-9"
    assert handler.stats().exported == 1


def test_exceptions_are_attributes_and_secrets_are_redacted(server: LiveServer) -> None:
    """logger.exception sends the stack; a card number in the message, a secret-named
    attribute and a card number in an attribute value are masked before export."""
    handler = handler_for(server.url)
    logger = logger_with(handler)
    extra = {"password": "hunter2-secret", "note": "paid with 4111 1111 1111 1111"}
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("charge failed for card 4111 1111 1111 1111", extra=extra)
    assert handler.drain(WAIT_S)
    handler.stop()
    [stored] = server.store.logs(LogQuery())
    assert "4111 1111 1111 1111" not in stored.body
    assert stored.attributes["exception.type"] == "ValueError"
    assert "boom" in stored.attributes["exception.stacktrace"]
    assert "hunter2-secret" not in str(stored.attributes)
    assert "4111 1111 1111 1111" not in str(stored.attributes)
    redacted = stored.attributes["threadline.redacted"]
    assert {"body", "password", "note"} <= set(redacted)


def test_a_flood_is_dropped_and_counted_without_blocking() -> None:
    """With the endpoint down, records past the log queue's size are dropped and counted."""
    handler = handler_for("http://127.0.0.1:9", queue_size=10, redact=False)
    logger = logger_with(handler)
    for n in range(1000):  # bounded
        logger.error("flood %d", n)
    stats = handler.stats()
    handler.stop()
    assert stats.dropped["queue_full"] >= 900


def test_a_closed_handler_keeps_exporting(server: LiveServer) -> None:
    """``logging`` closes every handler when an app reconfigures logging (uvicorn's and
    Django's ``dictConfig``) and leaves the root's handlers attached: close() flushes
    what is queued and the records logged after it are still exported."""
    handler = handler_for(server.url)
    logger = logger_with(handler)
    logger.warning("before the app configured logging")
    handler.close()
    assert len(server.store.logs(LogQuery())) == 1  # close() sent what was queued
    logger.warning("after the app configured logging")
    assert handler.drain(WAIT_S)
    handler.stop()
    bodies = [record.body for record in server.store.logs(LogQuery())]
    assert bodies == ["before the app configured logging", "after the app configured logging"]


def test_failing_log_export_warns_about_log_records(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the endpoint down, the warning counts log records, not spans, under a key of
    its own (a failing span export still gets its own warning)."""
    monkeypatch.setattr(guard, "_last_logged", {})  # warnings earlier in this run
    handler = handler_for("http://127.0.0.1:9", redact=False)
    logger = logger_with(handler)
    with caplog.at_level(logging.WARNING, logger="threadline"):
        logger.error("ledger unreachable")
        assert handler.drain(WAIT_S)
        handler.stop()
    [warning] = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert "dropped 1 log records after" in warning
    assert handler.stats().dropped["retry_deadline"] == 1
    assert "export failing: log records" in guard._last_logged

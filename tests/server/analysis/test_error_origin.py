"""Error origin: the span where a failure started, who propagated it, and what retries fixed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from threadline.server.analysis.error_origin import ErrorSpan, find_error_origin
from threadline.server.analysis.tree import build_tree
from threadline.server.model import SpanEvent, SpanKind, SpanRecord, StatusCode

TRACE = "1f2e3d4c5b6a79880f1e2d3c4b5a6978"
ERROR = StatusCode.ERROR
OK = StatusCode.OK


def span(
    span_id: str,
    parent: str | None,
    start: int,
    end: int,
    *,
    service: str | None = None,
    name: str | None = None,
    status: StatusCode = StatusCode.UNSET,
    message: str = "",
    events: tuple[SpanEvent, ...] = (),
) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service or span_id,
        name=name or f"op-{span_id}",
        kind=SpanKind.INTERNAL,
        start_ns=start,
        end_ns=end,
        status=status,
        status_message=message,
        events=events,
    )


def exception(time_ns: int, kind: str, message: str) -> SpanEvent:
    return SpanEvent("exception", time_ns, {"exception.type": kind, "exception.message": message})


def test_error_three_levels_deep_is_found_below_the_spans_that_propagated_it() -> None:
    """The deepest failing span is the origin; the failing callers above it only passed it on."""
    spans = [
        span("gw", None, 0, 100, service="gateway", status=ERROR, message="502 Bad Gateway"),
        span("cart", "gw", 5, 20, service="cart"),
        span("orders", "gw", 25, 95, service="orders", status=ERROR, message="upstream failed"),
        span("audit", "orders", 30, 40, service="audit"),
        span(
            "pay",
            "orders",
            45,
            90,
            service="payments",
            name="POST /charge",
            status=ERROR,
            message="card declined",
            events=(
                exception(60, "TimeoutError", "first try"),
                exception(85, "CardDeclined", "card 4242 declined"),
            ),
        ),
        span("ledger", "pay", 50, 55, service="ledger"),
    ]
    report = find_error_origin(build_tree(spans))
    assert report.trace_failed
    origin = report.origin
    assert origin is not None
    assert (origin.span_id, origin.service, origin.operation) == ("pay", "payments", "POST /charge")
    # The last exception recorded is the one that failed the span.
    assert (origin.exception_type, origin.message, origin.error_at_ns) == (
        "CardDeclined",
        "card 4242 declined",
        85,
    )
    assert origin.propagated_by == (
        ErrorSpan("orders", "orders", "op-orders"),
        ErrorSpan("gw", "gateway", "op-gw"),
    )
    assert (len(report.origins), report.error_span_count) == (1, 3)


def test_status_message_is_used_when_no_exception_was_recorded() -> None:
    """A failing span without an exception event is described by its status message."""
    report = find_error_origin(
        build_tree([span("gw", None, 0, 10, status=ERROR, message="503 Service Unavailable")])
    )
    assert report.origin is not None
    assert (report.origin.exception_type, report.origin.message) == (
        None,
        "503 Service Unavailable",
    )
    assert report.origin.propagated_by == ()


def test_failed_attempt_followed_by_successful_retry_leaves_the_trace_ok() -> None:
    """A client call that failed and then succeeded on retry is not a failure of the trace."""
    spans = [
        span("gw", None, 0, 100, service="gateway"),
        span("try1", "gw", 10, 40, service="gateway", name="GET /stock", status=ERROR),
        span("srv1", "try1", 12, 38, service="stock", status=ERROR, message="db locked"),
        span("try2", "gw", 50, 80, service="gateway", name="GET /stock"),
        span("srv2", "try2", 52, 78, service="stock"),
    ]
    report = find_error_origin(build_tree(spans))
    assert not report.trace_failed
    assert report.origin is None
    assert report.origins == ()
    assert report.recovered_span_ids == ("try1", "srv1")
    assert report.error_span_count == 2


def test_retries_that_all_failed_fail_the_trace_at_the_first_attempt() -> None:
    """When every attempt failed, the trace failed and the first failure is where it started."""
    spans = [
        span("gw", None, 0, 100, status=ERROR),
        span(
            "try1", "gw", 10, 40, service="gw", name="GET /stock", status=ERROR, message="timeout"
        ),
        span(
            "try2", "gw", 50, 80, service="gw", name="GET /stock", status=ERROR, message="refused"
        ),
    ]
    report = find_error_origin(build_tree(spans))
    assert report.trace_failed
    assert [o.span_id for o in report.origins] == ["try1", "try2"]
    assert report.origin is not None
    assert report.origin.message == "timeout"
    assert report.recovered_span_ids == ()


def test_root_that_failed_after_a_recovered_retry_is_its_own_origin() -> None:
    """A root that failed although its retried call recovered is where that failure started."""
    spans = [
        span("gw", None, 0, 100, status=ERROR, message="render failed"),
        span("try1", "gw", 10, 40, service="gw", name="GET /stock", status=ERROR),
        span("try2", "gw", 50, 80, service="gw", name="GET /stock"),
    ]
    report = find_error_origin(build_tree(spans))
    assert report.origin is not None
    assert (report.origin.span_id, report.origin.message) == ("gw", "render failed")


def test_unset_root_with_an_unrecovered_error_failed() -> None:
    """A root left unset by its instrumentation fails when an error below it was not recovered."""
    spans = [span("job", None, 0, 100), span("query", "job", 10, 20, status=ERROR)]
    report = find_error_origin(build_tree(spans))
    assert report.trace_failed
    assert report.origin is not None
    assert report.origin.span_id == "query"
    assert report.origin.propagated_by == ()


def test_root_marked_ok_handled_the_errors_below_it() -> None:
    """A root that set status OK did not fail; the errors below it are still listed as origins."""
    spans = [span("gw", None, 0, 100, status=OK), span("cache", "gw", 10, 20, status=ERROR)]
    report = find_error_origin(build_tree(spans))
    assert not report.trace_failed
    assert report.origin is None
    assert [o.span_id for o in report.origins] == ["cache"]


def test_of_several_independent_failures_the_earliest_is_the_origin() -> None:
    """Parallel branches that both failed name the one that failed first."""
    spans = [
        span("gw", None, 0, 1000, status=ERROR),
        span("slow", "gw", 10, 900, status=ERROR, message="timed out"),
        span("fast", "gw", 20, 30, status=ERROR, message="refused"),
    ]
    report = find_error_origin(build_tree(spans))
    assert [o.span_id for o in report.origins] == ["fast", "slow"]
    assert report.origin is not None
    assert report.origin.span_id == "fast"
    assert [p.span_id for p in report.origin.propagated_by] == ["gw"]


def test_error_below_a_span_that_handled_it_is_still_the_deepest() -> None:
    """An error span under a non-error caller is an origin; only failing ancestors propagate it."""
    spans = [
        span("gw", None, 0, 100, status=ERROR),
        span("svc", "gw", 10, 90),
        span("db", "svc", 20, 30, status=ERROR, message="deadlock"),
    ]
    report = find_error_origin(build_tree(spans))
    assert report.origin is not None
    assert report.origin.span_id == "db"
    assert [p.span_id for p in report.origin.propagated_by] == ["gw"]


def test_trace_without_errors() -> None:
    """A trace with no error span did not fail and has no origin."""
    report = find_error_origin(build_tree([span("gw", None, 0, 10), span("a", "gw", 1, 2)]))
    assert (report.trace_failed, report.origin, report.origins) == (False, None, ())
    assert report.error_span_count == 0


def test_empty_trace() -> None:
    """No spans did not fail."""
    report = find_error_origin(build_tree([]))
    assert (report.trace_failed, report.origin, report.error_span_count) == (False, None, 0)


@dataclass(frozen=True)
class Line:
    """A log line as the store returns one (the fields error origin reads)."""

    time_ns: int
    span_id: str | None
    severity_number: int
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    body_kind: str = "string"


def test_an_error_log_line_describes_a_span_without_an_exception_event() -> None:
    """The span's last ERROR line is the message, its time the error time; WARN lines and
    other spans' lines are not."""
    spans = [
        span("gw", None, 0, 100, status=ERROR, message="502"),
        span("pay", "gw", 10, 90, service="payments", status=ERROR, message="status 500"),
    ]
    logs = [
        Line(30, "pay", 17, "card declined by issuer"),
        Line(20, "pay", 18, "retrying the charge"),
        Line(40, "pay", 13, "slow issuer"),
        Line(50, "gw", 17, "upstream answered 500"),
        Line(60, None, 21, "process-wide failure"),
    ]
    origin = find_error_origin(build_tree(spans), logs).origin
    assert origin is not None
    assert (origin.span_id, origin.message, origin.message_source) == (
        "pay",
        "card declined by issuer",
        "log",
    )
    assert (origin.exception_type, origin.error_at_ns) == (None, 30)


def test_a_logged_exception_gives_its_type() -> None:
    """A line written by logger.exception carries exception.type: the origin has it."""
    logs = [Line(5, "gw", 17, "charge failed", {"exception.type": "CardDeclined"})]
    origin = find_error_origin(build_tree([span("gw", None, 0, 10, status=ERROR)]), logs).origin
    assert origin is not None
    assert (origin.exception_type, origin.message, origin.message_source) == (
        "CardDeclined",
        "charge failed",
        "log",
    )


def test_an_exception_event_wins_over_the_log_line() -> None:
    """With an exception event recorded, the log line does not replace it."""
    spans = [span("gw", None, 0, 10, status=ERROR, events=(exception(8, "KeyError", "sku"),))]
    origin = find_error_origin(build_tree(spans), [Line(9, "gw", 17, "lookup failed")]).origin
    assert origin is not None
    assert (origin.exception_type, origin.message, origin.message_source) == (
        "KeyError",
        "sku",
        "exception",
    )


def test_without_log_lines_the_status_message_stays() -> None:
    """No log lines passed (or none at ERROR): the status message, as before."""
    spans = [span("gw", None, 0, 10, status=ERROR, message="503")]
    origin = find_error_origin(build_tree(spans), [Line(5, "gw", 13, "warned")]).origin
    assert origin is not None
    assert (origin.message, origin.message_source, origin.error_at_ns) == ("503", "status", 10)


@pytest.mark.parametrize(
    ("body", "message", "source"),
    [
        ('{"message": "card declined", "user.id": "alice"}', "card declined", "log"),
        ('{"event": "charge failed", "client.address": "203.0.113.7"}', "charge failed", "log"),
        ('{"user.id": "alice", "amount": 12}', "status 500", "status"),
        ('["alice", 12]', "status 500", "status"),
    ],
)
def test_a_structured_body_gives_only_its_message_field(
    body: str, message: str, source: str
) -> None:
    """Of a map body only its message field is the origin's text (the rest may name a
    user, and the text is shown where field masking cannot reach); with none, the status."""
    spans = [span("pay", None, 0, 10, status=ERROR, message="status 500")]
    lines = [Line(5, "pay", 17, body, body_kind="json")]
    origin = find_error_origin(build_tree(spans), lines).origin
    assert origin is not None
    assert (origin.message, origin.message_source) == (message, source)

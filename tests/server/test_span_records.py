"""Span records read back from rows: one read's records parse each document once."""

from __future__ import annotations

from threadline.server.batch import record_from_row, record_to_row, records_from_rows
from threadline.server.model import SpanEvent, SpanKind, SpanRecord, StatusCode


def _span(index: int, *, host: str, route: str) -> SpanRecord:
    return SpanRecord(
        trace_id=f"{index % 3:032x}",
        span_id=f"{index:016x}",
        parent_span_id=None if index % 3 == 0 else f"{index - 1:016x}",
        service_name=f"svc-{host}",
        name=route,
        kind=SpanKind.SERVER,
        start_ns=1_000 + index,
        end_ns=2_000 + index,
        status=StatusCode.ERROR if index % 4 == 0 else StatusCode.OK,
        session_id="s-1",
        attributes={"http.route": route, "tags": ["a", "b"], "n": index % 2},
        resource={"service.name": f"svc-{host}", "host.name": host},
        events=(SpanEvent("retry", 1_500 + index, {"attempt": 2}),) if index == 4 else (),
    )


def test_one_reads_records_are_the_rows_records_with_shared_documents() -> None:
    """Rows repeating their resource and attribute documents (one process, one route)
    come back as the same records as one at a time, every field."""
    spans = [
        _span(i, host=("a", "b")[i % 2], route=("GET /", "<script>x</script>")[i % 2])
        for i in range(12)
    ]
    rows = [record_to_row(span) for span in spans]
    read = records_from_rows(rows)
    assert read == [record_from_row(row) for row in rows] == spans
    # Two spans of one process share the parsed resource, not just its value.
    assert read[0].resource is read[2].resource

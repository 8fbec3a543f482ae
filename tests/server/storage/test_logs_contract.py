"""The ``Store`` contract for log records, on every backend: durable writes, every
filter of ``LogQuery``, paging, and deletion by age and by user."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest

from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.log_batch import LogBatch, LogQuery, LogRecord
from threadline.server.storage.base import Store
from threadline.server.storage.duckdb import DuckDBStore

S: Final = 1_000_000_000
T0: Final = 1_700_000_040 * S
WAIT_S: Final = 30.0
TRACE: Final = "1" * 32
OTHER: Final = "2" * 32


def log(at_s: int, body: str = "card declined", **fields: Any) -> LogRecord:
    values: dict[str, Any] = {
        "time_ns": T0 + at_s * S,
        "observed_ns": T0 + at_s * S,
        "trace_id": TRACE,
        "span_id": "a" * 16,
        "service_name": "payments",
        "severity_number": 17,
        "severity_text": "ERROR",
        "body": body,
    }
    values.update(fields)
    return LogRecord(**values)


def write(store: Store, records: list[LogRecord]) -> None:
    store.write_logs(LogBatch.from_records(records)).result(timeout=WAIT_S)


def bodies(records: list[LogRecord]) -> list[str]:
    return [r.body for r in records]


def test_written_records_read_back_whole_in_time_order(store: Store) -> None:
    """Every field survives the round trip, and reads come back ordered by time."""
    later = log(2, "second", attributes={"order": {"id": 7}}, resource={"service.name": "payments"})
    earlier = log(
        1,
        '{"a":[1,2]}',
        body_kind="json",
        session_id="s1",
        user_id="u1",
        journey_id="j1",
        scope_name="checkout.logger",
        trace_id=None,
        span_id=None,
    )
    write(store, [later, earlier])
    assert store.logs(LogQuery()) == [earlier, later]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (LogQuery(trace_id=OTHER), ["other trace"]),
        (LogQuery(span_id="b" * 16), ["other span"]),
        (LogQuery(session_id="s1"), ["in session"]),
        (LogQuery(user_ids=("u0", "u1")), ["in session"]),
        (LogQuery(service="web"), ["web warning"]),
        (LogQuery(min_severity=17), ["card declined", "other trace", "other span", "in session"]),
        (LogQuery(text="CARD 50%"), ["card 50% declined"]),
        (LogQuery(start_ns=T0 + 3 * S, end_ns=T0 + 5 * S), ["other span", "in session"]),
    ],
    ids=["trace", "span", "session", "user", "service", "severity", "text", "window"],
)
def test_each_filter_selects_its_records(
    store: Store, query: LogQuery, expected: list[str]
) -> None:
    """Each filter alone keeps exactly the records it names (text: a literal substring)."""
    write(
        store,
        [
            log(1),
            log(2, "other trace", trace_id=OTHER),
            log(3, "other span", span_id="b" * 16),
            log(4, "in session", session_id="s1", user_id="u1"),
            log(5, "web warning", service_name="web", severity_number=13),
            log(6, "card 50% declined", severity_number=9),
            log(7, "card 5 declined", severity_number=9),
        ],
    )
    assert bodies(store.logs(query)) == expected


def test_pages_follow_each_other_and_newest_first_reverses(store: Store) -> None:
    """Offset and limit page through the records; newest_first reads them backwards."""
    write(store, [log(n, f"line {n}") for n in range(5)])
    assert bodies(store.logs(LogQuery(limit=2))) == ["line 0", "line 1"]
    assert bodies(store.logs(LogQuery(limit=2, offset=2))) == ["line 2", "line 3"]
    assert bodies(store.logs(LogQuery(limit=2, newest_first=True))) == ["line 4", "line 3"]


def test_logs_and_spans_written_together_are_both_kept(store: Store) -> None:
    """Log and span batches queued together (one group commit) are both stored."""
    span = span_record(TRACE, "a" * 16, None, "payments", "charge", T0, T0 + S)
    spans = store.write(SpanBatch.from_records([span]))
    logs = store.write_logs(LogBatch.from_records([log(0)]))
    spans.result(timeout=WAIT_S)
    logs.result(timeout=WAIT_S)
    assert [s.span_id for s in store.get_trace(TRACE)] == ["a" * 16]
    assert bodies(store.logs(LogQuery(trace_id=TRACE))) == ["card declined"]


def test_retention_deletes_records_older_than_the_cutoff(store: Store) -> None:
    """``delete_older_than`` removes log records timed before the cutoff, even with no spans."""
    write(store, [log(1, "old"), log(10, "new")])
    store.delete_older_than(T0 + 5 * S)
    assert bodies(store.logs(LogQuery())) == ["new"]


def test_erasure_removes_the_users_records_and_their_sessions(store: Store) -> None:
    """Records naming the user, of the user's sessions (found via spans or logs) and of the
    user's traces go; other users' records stay."""
    span = span_record(OTHER, "c" * 16, None, "web", "GET /", T0, T0 + S, session_id="s2")
    store.write(SpanBatch.from_records([span])).result(timeout=WAIT_S)
    user_span = span_record(
        "3" * 32, "d" * 16, None, "web", "GET /", T0, T0 + S, session_id="s3", user_id="u1"
    )
    store.write(SpanBatch.from_records([user_span])).result(timeout=WAIT_S)
    write(
        store,
        [
            log(1, "names the user", user_id="u1", trace_id=None),
            log(2, "in an attribute", attributes={"enduser.id": "u1"}, trace_id=None),
            log(3, "session of the user's log", session_id="s1", trace_id=None),
            log(4, "logged with user", session_id="s1", user_id="u1", trace_id=None),
            log(5, "session of the user's span", session_id="s3", trace_id=None),
            log(6, "trace of the user", trace_id="3" * 32),
            log(7, "someone else", session_id="s2", user_id="u2", trace_id=OTHER),
        ],
    )
    store.erase_user(["u1"])
    assert bodies(store.logs(LogQuery())) == ["someone else"]


def test_written_records_survive_reopening(tmp_path: Path) -> None:
    """A write that resolved is durable: the records are there after the store reopens."""
    path = tmp_path / "spans.duckdb"
    first = DuckDBStore(path)
    try:
        write(first, [log(1)])
    finally:
        first.close()
    again = DuckDBStore(path)
    try:
        assert bodies(again.logs(LogQuery())) == ["card declined"]
    finally:
        again.close()


def test_the_log_table_mirrors_the_batch_schema(tmp_path: Path) -> None:
    """The DDL of ``logs`` (new files and the version 9 step) has LOG_SCHEMA's columns,
    in order, with its nullability."""
    import duckdb

    from threadline.server.log_batch import LOG_SCHEMA

    path = tmp_path / "spans.duckdb"
    DuckDBStore(path).close()
    with duckdb.connect(str(path)) as connection:
        described = connection.execute("DESCRIBE logs").fetchall()
    assert [row[0] for row in described] == LOG_SCHEMA.names
    assert [row[2] == "YES" for row in described] == [f.nullable for f in LOG_SCHEMA]

"""The ``Store`` contract for the SDKs' own reports (``sdk_stats``), on every backend:
each process's newest report counted once, deletions and retention followed."""

from __future__ import annotations

from typing import Final

from support.spans import span_record
from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import TimeWindow
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.base import Store

S: Final = 1_000_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
WAIT_S: Final = 30.0
DAY: Final = TimeWindow(T0 - 3600 * S, T0 + 3600 * S)


def write(store: Store, records: list[SpanRecord]) -> None:
    store.write(SpanBatch.from_records(records)).result(timeout=WAIT_S)


def report(trace: str, at_s: int, exported: int, pid: int) -> SpanRecord:
    """A ``threadline.sdk.stats`` span of web's process ``pid`` on host h1, ``at_s`` after T0."""
    start = T0 + at_s * S
    return span_record(
        trace,
        "f1",
        None,
        "web",
        SDK_STATS_SPAN,
        start,
        start,
        kind=SpanKind.INTERNAL,
        attributes={
            "threadline.sdk.spans.exported": exported,
            "threadline.sdk.spans.dropped": 1,
            "threadline.sdk.spans.dropped.queue_full": 1,
            "threadline.sdk.spans.retried": 2,
            "threadline.sdk.spans.queued": 3,
            "process.pid": pid,
        },
        resource={"service.name": "web", "host.name": "h1"},
    )


def sdk_figures(store: Store, window: TimeWindow = DAY) -> list[tuple[str, int, int]]:
    """(process, reports, exported) of web's SDKs, newest report first."""
    return [(p.instance, p.reports, p.exported) for p in store.sdk_stats("web", window).processes]


def test_sdk_reports_keep_each_process_s_last_figures_across_batches(store: Store) -> None:
    """Reports arriving in several batches (one re-sent) count once each; each process
    shows its newest report's counters, with every figure it sends."""
    first = [report("e1" * 16, 10, 5, pid=7), report("e2" * 16, 20, 40, pid=8)]
    write(store, first)
    write(store, [report("e3" * 16, 70, 9, pid=7)])
    write(store, first)  # re-sent
    assert sdk_figures(store) == [("h1 pid 7", 2, 9), ("h1 pid 8", 1, 40)]
    newest = store.sdk_stats("web", DAY).processes[0]
    assert (newest.dropped, newest.retried, newest.queued) == (1, 2, 3)
    assert newest.dropped_by_reason == (("queue_full", 1),)
    # Reads cover whole minutes: the second minute alone holds pid 7's second report.
    assert sdk_figures(store, TimeWindow(T0 + MINUTE, T0 + 2 * MINUTE)) == [("h1 pid 7", 1, 9)]


def test_deleted_and_aged_out_sdk_reports_leave_the_figures(store: Store) -> None:
    """Deleting a report's trace brings back the process's report before it; retention
    removes the reports of the minutes it deletes, and keeps the rest of its minute."""
    write(store, [report("e1" * 16, 10, 5, pid=7), report("e2" * 16, 20, 6, pid=7)])
    write(store, [report("e3" * 16, 130, 9, pid=7)])
    store.delete_traces(["e2" * 16])
    assert sdk_figures(store) == [("h1 pid 7", 2, 9)]
    store.delete_traces(["e3" * 16])
    assert sdk_figures(store) == [("h1 pid 7", 1, 5)]
    write(store, [report("e4" * 16, 30, 7, pid=7), report("e5" * 16, 70, 8, pid=7)])
    assert store.delete_older_than(T0 + 20 * S) == 1
    assert sdk_figures(store) == [("h1 pid 7", 2, 8)]
    assert store.delete_older_than(T0 + 65 * S) == 1
    assert sdk_figures(store) == [("h1 pid 7", 1, 8)]


def test_processes_are_told_apart_by_instance_id_and_only_the_window_counts(store: Store) -> None:
    """``service.instance.id`` names a process before host and pid; reports outside the
    window, of other services or of user spans are not counted; a tie in time goes to
    the same report on every backend."""
    instance = span_record(
        "e1" * 16,
        "f1",
        None,
        "web",
        SDK_STATS_SPAN,
        T0 + 10 * S,
        T0 + 10 * S,
        kind=SpanKind.INTERNAL,
        attributes={"threadline.sdk.spans.exported": 5, "threadline.sdk.queue.capacity": 8},
        resource={"service.name": "web", "service.instance.id": "pod-a"},
    )
    tied = [report("e2" * 16, 20, 6, pid=8), report("e3" * 16, 20, 7, pid=8)]
    late = report("e4" * 16, 4000, 99, pid=8)  # after DAY ends
    user = span_record("e5" * 16, "f1", None, "web", "GET /", T0, T0 + S)
    write(store, [instance, *tied, late, user])
    assert sdk_figures(store) == [("h1 pid 8", 2, 7), ("pod-a", 1, 5)]
    assert store.sdk_stats("web", DAY).processes[1].queue_capacity == 8
    assert store.sdk_stats("cart", DAY).processes == ()

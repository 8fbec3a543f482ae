"""Trace groups on DuckDB draw their sample from a few slices of a busy window.

The sample of tail causes and hotspots is read span by span: drawn from the whole
window, its traces sit in every block of the span table and the read costs the
window's traffic. From slices spread over the window, the read stays the size of the
sample (``analysis.time_slices``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from support.spans import span_record
from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.analysis import time_slices
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.duckdb import DuckDBStore

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
HOUR: Final = TimeWindow(T0, T0 + 60 * MINUTE)
PER_MINUTE: Final = 40
SAMPLE: Final = 20


def checkout(index: int) -> list[SpanRecord]:
    """A trace a fraction of a minute after the last; every tenth fails in payments."""
    start = T0 + index * MINUTE // PER_MINUTE
    trace = f"{index:032x}"
    status = {"status": StatusCode.ERROR} if index % 10 == 0 else {}
    return [
        span_record(trace, "a1", None, "web", "POST /checkout", start, start + 100 * MS, **status),
        span_record(
            trace,
            "a2",
            "a1",
            "payments",
            "charge",
            start + MS,
            start + 80 * MS,
            kind=SpanKind.SERVER,
            **status,
        ),
    ]


def test_the_sample_of_a_busy_hour_comes_from_slices_spread_over_it(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        starts: dict[str, int] = {}
        records = []
        for index in range(60 * PER_MINUTE):
            trace = checkout(index)
            starts[trace[0].trace_id] = trace[0].start_ns
            records += trace
        store.write(SpanBatch.from_records(records)).result(timeout=60)
        groups = store.trace_groups(Target(), Split.FAILED, HOUR, sample=SAMPLE, sample_ids=SAMPLE)
        assert (groups.focus_traces, groups.baseline_traces) == (240, 2160)
        assert (groups.focus_sample, groups.baseline_sample) == (SAMPLE, SAMPLE)
        failed = {trace for trace in starts if int(trace, 16) % 10 == 0}
        assert set(groups.focus_ids) <= failed
        assert not set(groups.baseline_ids) & failed
        # The payments' errors are the focus traces' only origin: counted on the sample.
        charge = next(o for o in groups.operations if o.operation == "charge")
        assert (charge.focus_traces, charge.focus_error_traces) == (SAMPLE, SAMPLE)
        assert charge.baseline_error_traces == 0
        sampled = [starts[trace] for trace in (*groups.focus_ids, *groups.baseline_ids)]
        ranges = time_slices.covering((start, start) for start in sampled)
        # A few short slices (3.4 minutes here); drawn from the whole hour by hash, the
        # same sample spreads so that its 16 closest-packed ranges cover 15 minutes.
        assert sum(high - low for low, high in ranges) <= 8 * MINUTE
        # Spread over the hour: from its first quarter to its last.
        assert min(sampled) < T0 + 15 * MINUTE
        assert max(sampled) >= T0 + 45 * MINUTE
    finally:
        store.close()

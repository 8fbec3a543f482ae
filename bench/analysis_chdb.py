"""``analysis.py --store chdb``: the same reads on ClickHouse (chDB) beside DuckDB.

After the DuckDB part, the same seeded shop is loaded into a ClickHouse store on
chDB (ClickHouse's engine in this process) in the same temporary directory, its
rollups and journey steps merged (``compact_rollups``), and each read of
``analysis.py`` is timed through ``QueryService`` on both stores, one after the
other (fastest of ``--repeat`` runs after a warm-up). The full-scan baselines are
DuckDB's own and are not repeated here.

What is cheap to compare is compared (trace ids of a search, span counts of a
trace, service-map edges and their calls, request counts, group sizes, the first
row of a ranking, journey-map transitions, funnel step counts); a row whose
answers differ is marked "differs". Percentiles and sampled attribute lists are
not compared: each engine estimates them its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from threadline.server.aggregates import ServiceMap, ServiceRed, Split, TimeWindow
from threadline.server.analysis.journey_narrative import JourneyNarrative
from threadline.server.analysis.propagation_health import PropagationReport
from threadline.server.analysis.tail_latency import Explanation
from threadline.server.batch import SpanBatch
from threadline.server.model import JourneySummary
from threadline.server.query import CriticalPathView, JourneyView, TracePage, TraceView
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.store_url import StoreUrl

# (name, call on a store) — built by ``analysis.query_cases`` for either store.
Cases = Callable[[Store], list[tuple[str, Callable[[], Any]]]]
Loader = Callable[[Store, Iterable[SpanBatch]], tuple[int, float]]
Timer = Callable[[Callable[[], Any], int], tuple[float, float]]
NOT_COMPARED: Final = object()
# Characters of each answer's digest printed beside a row that differs.
SHOWN: Final = 70


def open_chdb(directory: Path) -> ClickHouseStore:
    return ClickHouseStore(StoreUrl(backend="chdb", path=directory / "chdb"))


def digest(answer: Any) -> Any:
    """The part of an answer both stores must agree on (``NOT_COMPARED`` if none)."""
    if isinstance(answer, TracePage):
        return [t.trace_id for t in answer.traces]
    if isinstance(answer, list) and all(isinstance(j, JourneySummary) for j in answer):
        return [(j.session_id, j.trace_count, j.span_count) for j in answer]
    if isinstance(answer, TraceView):
        return len(answer.tree.nodes)
    if isinstance(answer, CriticalPathView):
        return [s.span_id for s in answer.path.spans]
    if isinstance(answer, JourneyView | JourneyNarrative):
        return len(answer.steps)
    if isinstance(answer, ServiceMap):
        return sorted((e.caller, e.callee, e.kind, e.stats.calls) for e in answer.edges)
    if isinstance(answer, ServiceRed):
        return (answer.totals.requests, [b.stats.requests for b in answer.buckets])
    if isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], TimeWindow):
        return sorted((r.service, r.operation, r.stats.requests, r.stats.errors) for r in answer[1])
    if isinstance(answer, Explanation):
        return _ranking(answer)
    if isinstance(answer, PropagationReport):
        return (len(answer.services), len(answer.orphans), len(answer.message_hops))
    if isinstance(answer, dict) and "transitions" in answer:
        return sorted((t["source"], t["target"], t["count"]) for t in answer["transitions"])
    if isinstance(answer, dict) and "steps" in answer:
        return [(s["step"], s["journeys"]) for s in answer["steps"]]
    if isinstance(answer, list):  # spans of one trace
        return len(answer)
    return NOT_COMPARED


def _ranking(found: Explanation) -> Any:
    """Group sizes and the first row of the ranking the view is for (the sample may
    differ below it): where time grows for slow requests, error sources for failed ones
    (``explain`` ranks time growth for both)."""
    rows = found.time_growth if found.groups.split is Split.SLOW else found.error_sources
    first = (rows[0].service, rows[0].operation) if rows else None
    return (found.groups.focus_traces, found.groups.baseline_traces, first)


def compare(
    duck: Store,
    tmp: Path,
    batches: Iterable[SpanBatch],
    duck_rate: float,
    cases: Cases,
    *,
    load: Loader,
    timed: Timer,
    repeat: int,
    then: Callable[[Store], None] | None = None,
) -> None:
    """Load ``batches`` into chDB and print each read's time on both stores; ``then``
    is given the loaded chDB store last."""
    click = open_chdb(tmp)
    try:
        written, seconds = load(click, batches)
        click.compact_rollups()
        click_rate = written / seconds
        print(f"\nClickHouse (chDB): loaded {written:,} spans in {seconds:.1f} s")
        print(f"\n{'view (QueryService)':<36}{'DuckDB ms':>11}{'chDB ms':>10}{'chDB ÷ DuckDB':>15}")
        for (name, on_duck), (_, on_click) in zip(cases(duck), cases(click), strict=True):
            print(_row(name, on_duck, on_click, timed, repeat))
        print(f"{'load spans/s':<36}{duck_rate:>11,.0f}{click_rate:>10,.0f}"
              f"{click_rate / duck_rate:>15.2f}")  # fmt: skip
        print(_bytes_row(duck, click, written))
        if then is not None:
            then(click)
    finally:
        click.close()


def _row(
    name: str, on_duck: Callable[[], Any], on_click: Callable[[], Any], timed: Timer, repeat: int
) -> str:
    duck_s, _ = timed(on_duck, repeat)
    click_s, _ = timed(on_click, repeat)
    duck_digest, click_digest = digest(on_duck()), digest(on_click())
    line = f"{name:<36}{duck_s * 1000:>11.1f}{click_s * 1000:>10.1f}{click_s / duck_s:>15.2f}"
    if duck_digest == click_digest:
        return line
    # What differs, shortened: enough to see whether counts or a ranking moved.
    return f"{line}  differs: DuckDB {duck_digest!s:.{SHOWN}} chDB {click_digest!s:.{SHOWN}}"


def _bytes_row(duck: Store, click: ClickHouseStore, spans: int) -> str:
    """Bytes per span of each whole store (spans, summaries, rollups) after compaction."""
    duck.compact()
    click.compact()
    duck_b, click_b = duck.size_bytes() / spans, click.size_bytes() / spans
    ratio = click_b / duck_b
    return f"{'bytes per span (compacted)':<36}{duck_b:>11.1f}{click_b:>10.1f}{ratio:>15.2f}"

"""The ClickHouse journey steps: the same answers as DuckDB's, and the table's upkeep.

The agreement test writes one workload of a few hundred traces in many sessions
(late spans, out-of-order batches, synthetic traffic, a pause past the session gap)
to a DuckDB file and to chDB in this process, and compares the map, the funnel and
the traces funnels read, whole.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import pytest

from support.journey_script import FUNNEL, SESSIONS, T0, S, shoppers
from support.spans import span_record
from threadline.conventions import JOURNEY_SYNTHETIC, SYNTHETIC_TRUE
from threadline.demo.shopper_script import PLAN_ATTRIBUTE
from threadline.server import journey_query
from threadline.server.aggregates import TimeWindow
from threadline.server.analysis.funnel import StepMatch
from threadline.server.batch import SpanBatch
from threadline.server.funnel_defs import Funnel
from threadline.server.journey_model import SESSION_GAP_NS, JourneyTrace, StepStats, Transition
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.storage.base import Store
from threadline.server.storage.clickhouse import journey_origins, journey_steps
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.server.storage.duckdb import DuckDBStore
from threadline.store_url import StoreUrl

WAIT_S: Final = 60.0
# How long the test slows the idle work down, so the store starts to close during it.
CLOSE_DURING_IDLE_S: Final = 0.5
WINDOWS: Final = (
    TimeWindow(T0, T0 + 3600 * S),
    # Cuts through sessions: steps before it are not read, steps after it are only
    # looked for as next steps.
    TimeWindow(T0 + 500 * S, T0 + 1500 * S),
)
SHOP: Final = Funnel("shop", tuple(StepMatch(op) for op in FUNNEL))
TRIAL: Final = (PLAN_ATTRIBUTE, "trial")
PAGES: Final = ("GET /", "GET /search", "GET /product", "POST /cart", "GET /help")


def wanderers(seed: int = 7, sessions: int = 80) -> list[SpanRecord]:
    """Sessions walking random pages, some pausing past the session gap, some
    synthetic; each trace a ``web`` root and a ``search`` or ``payments`` child that
    sometimes fails, and now and then a late child arriving in a batch of its own."""
    rng = random.Random(seed)
    records: list[SpanRecord] = []
    for session in range(sessions):
        at = T0 + rng.randrange(0, 1800) * S
        synthetic = {JOURNEY_SYNTHETIC: SYNTHETIC_TRUE} if session % 9 == 0 else {}
        for k in range(rng.randrange(1, 7)):
            trace = f"{SESSIONS + session:016x}{k:016x}"
            took = rng.randrange(20, 900) * 1_000_000
            page = rng.choice(PAGES)
            callee = "payments" if page == "POST /cart" else "search"
            failed = rng.random() < 0.2
            records += [
                span_record(trace, "r", None, "web", page, at, at + took,
                            session_id=f"wanderer-{session}", attributes=synthetic),
                span_record(trace, "c", "r", callee, "call", at + 1, at + took // 2,
                            kind=SpanKind.SERVER, session_id=f"wanderer-{session}",
                            status=StatusCode.ERROR if failed else StatusCode.UNSET),
            ]  # fmt: skip
            at += took + rng.choice((2, 15, 40, 300)) * S
            if rng.random() < 0.1:
                at += SESSION_GAP_NS + S
    return records


def batches(records: list[SpanRecord], seed: int = 11, size: int = 150) -> list[SpanBatch]:
    """``records`` shuffled into batches (about fourteen of the shoppers and wanderers):
    traces arrive split and out of order."""
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    return [SpanBatch.from_records(shuffled[n : n + size]) for n in range(0, len(shuffled), size)]


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[DuckDBStore, ClickHouseStore]]:
    duck = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        clickhouse = ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    except BaseException:
        duck.close()
        raise
    try:
        for batch in batches(shoppers() + wanderers()):
            for store in (clickhouse, duck):  # DuckDB's write last: see the agreement test
                store.write(batch).result(timeout=WAIT_S)
        yield duck, clickhouse
    finally:
        clickhouse.close()
        duck.close()


def _nanosecond(
    found: tuple[list[StepStats], list[Transition]],
) -> tuple[list[StepStats], list[Transition]]:
    """Latency percentiles to the nanosecond: the engines interpolate in doubles in a
    different order (a few 1e-16 apart)."""
    steps, moves = found
    return [replace(s, p50_ns=round(s.p50_ns), p95_ns=round(s.p95_ns)) for s in steps], moves


def answers(store: Store, window: TimeWindow) -> dict[str, Any]:
    return {
        "map": _nanosecond(store.journey_map(window)),
        "payments map": _nanosecond(store.journey_map(window, service="payments")),
        "funnel": journey_query.funnel(store, SHOP, window, None),
        "traces": store.step_traces(window),
        "entering at the cart": store.step_traces(
            window, funnel=(StepMatch("POST /cart", "web"), StepMatch("POST /checkout"))
        ),
        "touching payments, entering at a product": store.step_traces(
            window, service="payments", funnel=(StepMatch("GET /product"), StepMatch("POST /cart"))
        ),
        "trial map": _nanosecond(store.journey_map(window, attribute=TRIAL)),
        "trial traces entering at the cart": store.step_traces(
            window, funnel=(StepMatch("POST /cart"), StepMatch("POST /pay")), attribute=TRIAL
        ),
    }


def test_clickhouse_and_duckdb_give_the_same_journey_answers(
    both: tuple[DuckDBStore, ClickHouseStore],
) -> None:
    """Map, service- and attribute-filtered maps, funnel with its drop-offs, and the
    traces funnels read are equal once both stores have folded (DuckDB its summaries,
    ClickHouse its merge, each naming error origins); the maps, which no origin
    enters, are equal before that too."""
    duck, clickhouse = both
    # DuckDB's writer folds (and names error origins) on its own once idle for
    # ``IDLE_FOLD_S``, so what reads origins (funnel factors, step traces) is compared
    # only after both stores are folded; the maps at any time.
    unfolded = ("map", "payments map", "trial map")
    before = {window: answers(duck, window) for window in WINDOWS}
    for window in WINDOWS:
        expected = before[window]
        assert sum(t.count for t in expected["map"][1]) > 300  # a real workload
        assert len(expected["touching payments, entering at a product"][0]) > 100
        assert any(d["factors"] for d in expected["funnel"]["drop_offs"])
        trial = sum(s.traces for s in expected["trial map"][0])
        assert 0 < trial < sum(s.traces for s in expected["map"][0])  # the filter keeps some
        assert expected["trial traces entering at the cart"][0]
        found = answers(clickhouse, window)
        assert {key: found[key] for key in unfolded} == {key: expected[key] for key in unfolded}
    duck.compact_rollups()
    clickhouse.compact_rollups()
    for window in WINDOWS:
        assert answers(clickhouse, window) == answers(duck, window)


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    try:
        yield store
    finally:
        store.close()


def _step_rows(store: ClickHouseStore) -> int:
    rows = store._fetch(
        "SELECT sum(rows) FROM system.parts WHERE active AND database = {db:String}"
        " AND table = 'journey_steps'",
        {"db": store._connection.database},
    )
    return int(rows[0][0] or 0)


def test_late_spans_add_partial_rows_that_reads_and_merges_fold(
    clickhouse: ClickHouseStore,
) -> None:
    """Each insert of a trace's spans adds a row; reads merge them, and so does a merge."""
    records = shoppers()
    for batch in batches(records, size=len(records) // 3 + 1):
        clickhouse.write(batch).result(timeout=WAIT_S)
    traces = len({r.trace_id for r in records})
    assert _step_rows(clickhouse) > traces
    before = clickhouse.journey_map(WINDOWS[0])
    # The idle writer adds a row per failed trace when it names error origins; let
    # it, so that the merge below is the last thing to change the parts.
    _wait_for_error_origins(clickhouse)
    clickhouse.compact_rollups()
    assert _step_rows(clickhouse) == traces
    assert clickhouse.journey_map(WINDOWS[0]) == before
    assert sum(t.count for t in before[1]) == 190 + 190 + 125


def test_backfill_fills_the_steps_of_spans_stored_before_the_table(
    clickhouse: ClickHouseStore,
) -> None:
    """A database whose spans predate the table (schema version 1) gets every step
    back, with its error origin."""
    clickhouse.write(SpanBatch.from_records(shoppers() + wanderers())).result(timeout=WAIT_S)
    clickhouse.compact_rollups()
    kept = clickhouse.journey_map(WINDOWS[0])
    traces, _ = clickhouse.step_traces(WINDOWS[0])
    assert {t.error_origin for t in traces if t.failed} >= {"payments"}
    clickhouse._command(f"TRUNCATE TABLE {journey_steps.steps_table(clickhouse._tables)}", {})
    assert clickhouse.journey_map(WINDOWS[0]) == ([], [])

    assert journey_steps.backfill_on(clickhouse._connection, clickhouse._tables) == 1
    assert clickhouse.journey_map(WINDOWS[0]) == kept
    assert clickhouse.step_traces(WINDOWS[0]) == (traces, False)


def test_erasure_leaves_no_step_row_in_the_parts(clickhouse: ClickHouseStore) -> None:
    """After erase_user, the journey steps' parts hold only the other users' traces."""
    clickhouse.write(SpanBatch.from_records(shoppers())).result(timeout=WAIT_S)
    clickhouse.compact_rollups()
    before = _step_rows(clickhouse)
    clickhouse.erase_user(["user-199"])  # shopper 199 paid: four traces
    assert _step_rows(clickhouse) == before - 4
    traces, _ = clickhouse.step_traces(WINDOWS[0])
    assert "shopper-199" not in {t.session_id for t in traces}


def test_an_idle_writer_names_the_error_origins_of_what_it_wrote(
    clickhouse: ClickHouseStore,
) -> None:
    """A live server never calls ``compact_rollups``: once its writer has been idle for
    a moment, the failed traces it wrote carry the service their error started in, so
    funnels can weigh the backend trouble users met."""
    clickhouse.write(SpanBatch.from_records(shoppers())).result(timeout=WAIT_S)
    failed = _wait_for_error_origins(clickhouse)
    assert {t.error_origin for t in failed} == {"payments"}


def _wait_for_error_origins(clickhouse: ClickHouseStore) -> list[JourneyTrace]:
    """The failed step traces, once the idle writer named their error origins (or
    ``WAIT_S`` passed)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        failed = [t for t in clickhouse.step_traces(WINDOWS[0])[0] if t.failed]
        assert failed, "the scripted shoppers meet payment errors"
        if all(t.error_origin is not None for t in failed) or time.monotonic() > deadline:
            return failed
        time.sleep(0.5)


def test_closing_while_the_writer_names_error_origins_lets_it_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server stopped right after a burst closes its store while the writer's idle
    work runs: that work finishes on the open connection, and nothing is logged as
    failed (it used to end in "the store is closed", with a traceback, at shutdown)."""
    started = threading.Event()
    set_origins = journey_origins.set_origins

    def slow_set_origins(*args: Any) -> int:
        started.set()
        time.sleep(CLOSE_DURING_IDLE_S)  # the store's close begins meanwhile
        return set_origins(*args)

    monkeypatch.setattr(journey_origins, "set_origins", slow_set_origins)
    store = ClickHouseStore(StoreUrl(backend="chdb", path=tmp_path / "chdb"))
    try:
        store.write(SpanBatch.from_records(shoppers())).result(timeout=WAIT_S)
        assert started.wait(timeout=WAIT_S), "the writer never went idle"
    finally:
        with caplog.at_level(logging.ERROR):
            store.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

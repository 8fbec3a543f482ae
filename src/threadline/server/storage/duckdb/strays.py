"""A batch's strays: the spans of an ingest batch that pair with stored spans.

An edge (``rollups``) or an orphan count (``health_rollups``) pairs a child span with
its parent, and either may arrive first. Most of a batch's children have their parent
beside them in the batch; what is left pairs with, or misses, a stored span:

- the batch's *lonely* spans: a parent id, and no parent in the batch within the
  horizon (their parent may be stored, else they are orphans);
- the kept orphans the batch *adopts*: stored spans whose parent arrived only now.

``set_apart`` keeps both in temporary tables for the writer's transaction, so the
edge pairs and the orphan counts read them once, and skip their lookups among the
stored spans near the batch when both are empty (a batch of whole traces, the usual
case).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from threadline.server.storage.duckdb.schema import ROLLUP_ORPHAN_SPANS
from threadline.server.storage.duckdb.sql import HAS_PARENT, Row, wrote_rows

Run = Callable[[str, Sequence[object]], list[Row]]

# The rollups' minute (``rollups`` takes both constants from here).
MINUTE_NS: Final = 60_000_000_000
# How far apart a caller's and its callee's start times may be for the pair to be
# an edge. It bounds how much of the span table each commit reads; calls and queue
# hops longer than this are rare and still visible in the traces themselves.
PAIR_HORIZON_NS: Final = 15 * MINUTE_NS

# The batch's strays, set apart for the transaction by ``set_apart``.
LONELY: Final = "threadline_lonely"
ADOPTED: Final = "threadline_adopted"


@dataclass(frozen=True, slots=True)
class Strays:
    """Whether ``LONELY`` (the batch's lonely spans) and ``ADOPTED`` (the kept orphans
    whose parent it holds) have rows."""

    lonely: bool
    adopted: bool


def lonely(fresh: str) -> str:
    """Spans of the batch with a parent id and no parent in the batch within the horizon.

    Most of a batch's children have their parent beside them; only these may pair with,
    or miss, a stored span, so only these are joined with the spans stored near the batch.
    The pairs within the batch are matched on ids and times alone; the whole rows are
    then read for the spans left, by the key re-sent spans are told by (a deduplicated
    batch holds each once). Carrying every column through the join cost about twice
    as much (``bench/ingest_profile.py``).
    """
    ids = f"(SELECT trace_id, span_id, parent_span_id, start_ns FROM {fresh})"
    unpaired = (
        f"(SELECT c.trace_id, c.span_id, c.start_ns FROM {ids} AS c ANTI JOIN {ids} AS p"
        " ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id"
        f" AND abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS} WHERE {HAS_PARENT})"
    )
    return (
        f"(SELECT s.* FROM {fresh} AS s SEMI JOIN {unpaired} AS u"
        " ON s.trace_id = u.trace_id AND s.span_id = u.span_id AND s.start_ns = u.start_ns)"
    )


def adopted(fresh: str) -> str:
    """The kept orphans (``rollup_orphan_spans`` rows) whose parent is in the batch.

    A stored span whose parent arrives now had no parent near it when it was stored, so
    it is among the kept orphans (``health_rollups`` keeps it there until this batch's
    counters run): a join with that small table finds them instead of a scan of every
    callee near the batch. The batch's spans are new (re-sent ones are dropped first),
    so none of them is stored there yet.
    """
    return f"""(SELECT o.* FROM {ROLLUP_ORPHAN_SPANS} AS o
 SEMI JOIN {fresh} AS p ON o.trace_id = p.trace_id AND o.parent_span_id = p.span_id
  AND abs(o.start_ns - p.start_ns) <= {PAIR_HORIZON_NS})"""


def set_apart(run: Run, fresh: str) -> Strays:
    """Keep the batch's lonely spans and the orphans it adopts in ``LONELY`` and
    ``ADOPTED`` for the transaction (``forget`` drops them): the edge pairs and
    the counters both read them, and skip their lookups when they are empty."""
    lonely_rows = run(f"CREATE OR REPLACE TEMP TABLE {LONELY} AS SELECT * FROM {lonely(fresh)}", [])
    adopted_rows = run(
        f"CREATE OR REPLACE TEMP TABLE {ADOPTED} AS SELECT * FROM {adopted(fresh)}", []
    )
    return Strays(lonely=wrote_rows(lonely_rows), adopted=wrote_rows(adopted_rows))


def forget(run: Run) -> None:
    run(f"DROP TABLE {LONELY}", [])
    run(f"DROP TABLE {ADOPTED}", [])

"""Propagation health on ClickHouse, answered from the rollups (``rollup_tables``).

As the DuckDB store's ``propagation_reads``: entry spans and unparented ones per
operation of called services (``request_rollup``'s SERVER and CONSUMER rows; a
service is *called* when ``pair_rollup`` holds a call to it in the window), orphans
per service (the kept ``orphan_spans``), message hops (``hop_rollup``), all sums over
the whole minutes covering the window.

Examples are bounded reads: an orphan's comes from the kept orphans; an unparented
entry's from its service's spans in the latest minute holding one, one query for
all of them; a broken hop's from the example trace ids ``hop_rollup`` keeps per
minute, the latest whose traces are still stored (a deletion may have taken the
one a row kept). At most ``MAX_EXAMPLES`` findings get one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

from threadline.server.aggregates import (
    MessageHop,
    OrphanSpans,
    PropagationFindings,
    TimeWindow,
    UnparentedEntries,
)
from threadline.server.storage.clickhouse.pair_rollups import Names, kept_orphans
from threadline.server.storage.clickhouse.rollup_tables import MINUTE_NS, NO_PARENT
from threadline.server.storage.clickhouse.sql import Bound
from threadline.server.storage.clickhouse.tables import Fetch, Tables

# Findings that get an example trace: each costs a bounded read.
MAX_EXAMPLES: Final = 50


def minutes(window: TimeWindow) -> tuple[int, int]:
    """The whole minutes covering ``window``: rollup reads widen windows to them."""
    return window.start_ns // MINUTE_NS, -(-window.end_ns // MINUTE_NS)


def propagation(fetch: Fetch, t: Tables, window: TimeWindow) -> PropagationFindings:
    names = Names(t)
    first, last = minutes(window)
    span = {"first": first, "last": last}
    in_minutes = "minute >= {first:Int64} AND minute < {last:Int64}"
    entry_rows = fetch(
        f"""SELECT service, operation, sum(spans), sum(if(unparented = 1, spans, 0))
FROM {names.requests}
WHERE {in_minutes} AND served = 1 AND service IN (
    SELECT callee FROM {names.pairs} WHERE {in_minutes}
    GROUP BY callee HAVING sum(calls) > 0)
GROUP BY service, operation HAVING sum(spans) != 0
ORDER BY service, operation""",
        span,
    )
    orphans = kept_orphans(
        names,
        f"start_ns >= {first * MINUTE_NS} AND start_ns < {last * MINUTE_NS}",
    )
    orphan_rows = fetch(
        f"SELECT service, count(), min(trace_id) FROM {orphans} GROUP BY service ORDER BY service",
        {},
    )
    hop_rows = fetch(
        f"""SELECT producer, consumer, destination, sum(messages),
       sum(if(elsewhere = 1 AND linked = 0, messages, 0)),
       sum(if(elsewhere = 1 AND linked = 1, messages, 0))
FROM {names.hops} WHERE {in_minutes}
GROUP BY producer, consumer, destination HAVING sum(messages) != 0
ORDER BY producer, consumer, destination""",
        span,
    )
    budget = [MAX_EXAMPLES]
    entry_examples = (
        _entry_examples(fetch, t, names, window, budget) if any(r[3] for r in entry_rows) else {}
    )
    broken = any(r[4] for r in hop_rows)
    hop_examples = _hop_examples(fetch, t, names, window, budget) if broken else {}
    return PropagationFindings(
        window=window,
        entries=tuple(
            UnparentedEntries(
                row[0], row[1], int(row[2]), int(row[3]), entry_examples.get((row[0], row[1]))
            )
            for row in entry_rows
        ),
        orphans=tuple(OrphanSpans(row[0], int(row[1]), row[2]) for row in orphan_rows),
        message_hops=tuple(
            MessageHop(
                producer=row[0],
                consumer=row[1],
                destination=row[2],
                messages=int(row[3]),
                broken=int(row[4]),
                linked=int(row[5]),
                example_producer_trace_id=examples[0],
                example_consumer_trace_id=examples[1],
            )
            for row in hop_rows
            for examples in [hop_examples.get((row[0], row[1], row[2]), (None, None))]
        ),
    )


def _entry_examples(
    fetch: Fetch, t: Tables, names: Names, window: TimeWindow, budget: list[int]
) -> dict[tuple[str, str], str | None]:
    """One read for every broken operation: its service's spans in the latest minute
    holding an unparented one."""
    first, last = minutes(window)
    latest = fetch(
        f"""SELECT service, operation, max(minute) FROM (
    SELECT minute, service, operation, sum(spans) AS broken FROM {names.requests}
    WHERE minute >= {{first:Int64}} AND minute < {{last:Int64}} AND served = 1
      AND unparented = 1
    GROUP BY minute, service, operation)
WHERE broken > 0 GROUP BY service, operation ORDER BY service, operation""",
        {"first": first, "last": last},
    )
    chosen = latest[: budget[0]]
    budget[0] -= len(chosen)
    if not chosen:
        return {}
    keys = sorted({(str(row[0]), int(row[2])) for row in chosen})
    bound = Bound()
    low = bound.add(max(window.start_ns, min(m for _, m in keys) * MINUTE_NS), "Int64")
    high = bound.add(min(window.end_ns, (max(m for _, m in keys) + 1) * MINUTE_NS), "Int64")
    pairs = bound.add(keys, "Array(Tuple(String, Int64))")
    rows = fetch(
        f"""SELECT service_name, name, min(trace_id) FROM {t.spans}
WHERE start_ns >= {low} AND start_ns < {high}
  AND (toString(service_name), intDiv(start_ns, {MINUTE_NS})) IN {pairs}
  AND kind IN ('server', 'consumer') AND {NO_PARENT} AND links = '[]'
GROUP BY service_name, name""",
        bound.params,
    )
    found = {(str(r[0]), str(r[1])): str(r[2]) for r in rows}
    return {(str(r[0]), str(r[1])): found.get((str(r[0]), str(r[1]))) for r in chosen}


def _hop_examples(
    fetch: Fetch, t: Tables, names: Names, window: TimeWindow, budget: list[int]
) -> dict[tuple[str, str, str], tuple[str | None, str | None]]:
    """The latest broken minute's kept example of each hop, whose traces still exist."""
    first, last = minutes(window)
    rows = fetch(
        f"""SELECT producer, consumer, destination, minute, producer_trace_id, consumer_trace_id
FROM {names.hops}
WHERE minute >= {{first:Int64}} AND minute < {{last:Int64}} AND elsewhere = 1 AND linked = 0
  AND messages > 0
ORDER BY producer, consumer, destination, minute DESC, consumer_trace_id, producer_trace_id""",
        {"first": first, "last": last},
    )
    candidates: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    for producer, consumer, destination, _, producer_trace, consumer_trace in rows:
        candidates[(producer, consumer, destination)].append((producer_trace, consumer_trace))
    chosen = sorted(candidates)[: budget[0]]
    budget[0] -= len(chosen)
    ids = sorted({i for key in chosen for pair in candidates[key] for i in pair})
    if not ids:
        return {}
    stored = {
        str(r[0])
        for r in fetch(
            f"SELECT DISTINCT trace_id FROM {t.trace_ts} WHERE trace_id IN {{ids:Array(String)}}",
            {"ids": ids},
        )
    }
    found: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}
    for key in chosen:
        pair = next((p for p in candidates[key] if p[0] in stored and p[1] in stored), (None, None))
        found[key] = pair
    return found

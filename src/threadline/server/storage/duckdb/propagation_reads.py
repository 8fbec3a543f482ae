"""Propagation health answered from the rollups (``health_rollups``), not a span scan.

The counts (entry spans and unparented ones per operation of called services,
orphans per service, message hops) are sums of delta rows over the whole minutes
covering the window, exact like every rollup count. Which services are *called*
comes from the edge rollups: the callees of any edge in the window.

An example trace is a bounded read: an orphan's comes from the kept orphan spans;
an unparented entry's from its service's spans in the latest minute holding one
(known from the rollup rows), one query for all of them; a broken hop's from the
latest such minute and the producers within the horizon of it, one query per hop.
At most ``MAX_EXAMPLES`` findings get one.
"""

from __future__ import annotations

from typing import Final

from threadline.server.aggregates import (
    MessageHop,
    OrphanSpans,
    PropagationFindings,
    TimeWindow,
    UnparentedEntries,
)
from threadline.server.storage.duckdb.health_rollups import (
    ENTRIES,
    HOPS,
    ORPHAN_SPANS,
    ORPHANS,
    UNPARENTED,
    hop_pairs,
)
from threadline.server.storage.duckdb.rollup_reads import minutes
from threadline.server.storage.duckdb.rollups import EDGES, MINUTE_NS, NAMES, OTHER, PAIR_HORIZON_NS
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Fetch

# Findings that get an example trace: each costs a bounded read of spans.
MAX_EXAMPLES: Final = 50

_CALLED: Final = f"""
SELECT callee FROM {EDGES}
WHERE minute >= ? AND minute < ? AND measure = 'latency'
GROUP BY callee HAVING sum(calls) > 0"""


def _last_minutes(fetch: Fetch, sql: str, params: list[object]) -> dict[tuple[str, ...], int]:
    """Key → the latest minute whose rows sum to a break; ``sql`` selects key..., minute."""
    return {tuple(row[:-1]): int(row[-1]) for row in fetch(sql, params)}


def _span_range(minute: int, window: TimeWindow) -> list[int]:
    """The part of ``minute`` inside ``window``, in nanoseconds."""
    return [max(minute * MINUTE_NS, window.start_ns), min((minute + 1) * MINUTE_NS, window.end_ns)]


def propagation(fetch: Fetch, window: TimeWindow) -> PropagationFindings:
    span_minutes = list(minutes(window))
    entry_rows = fetch(
        f"""SELECT service, operation, sum(spans), sum(unparented) FROM {ENTRIES}
WHERE minute >= ? AND minute < ? AND service IN ({_CALLED})
GROUP BY service, operation HAVING sum(spans) <> 0
ORDER BY service, operation""",
        [*span_minutes, *span_minutes],
    )
    orphan_rows = fetch(
        f"""SELECT service, sum(orphans) FROM {ORPHANS}
WHERE minute >= ? AND minute < ? GROUP BY service HAVING sum(orphans) <> 0 ORDER BY service""",
        span_minutes,
    )
    hop_rows = fetch(
        f"""SELECT producer, consumer, destination, sum(messages), sum(broken), sum(linked)
FROM {HOPS} WHERE minute >= ? AND minute < ?
GROUP BY producer, consumer, destination HAVING sum(messages) <> 0
ORDER BY producer, consumer, destination""",
        span_minutes,
    )
    budget = _Budget()
    entry_examples = _entry_examples(fetch, window, budget) if any(r[3] for r in entry_rows) else {}
    orphan_examples = _orphan_examples(fetch, window) if orphan_rows else {}
    hop_examples = _hop_examples(fetch, window, budget) if any(r[4] for r in hop_rows) else {}
    return PropagationFindings(
        window=window,
        entries=tuple(
            UnparentedEntries(
                row[0], row[1], int(row[2]), int(row[3]), entry_examples.get((row[0], row[1]))
            )
            for row in entry_rows
        ),
        orphans=tuple(
            OrphanSpans(row[0], int(row[1]), orphan_examples.get((row[0],))) for row in orphan_rows
        ),
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


class _Budget:
    """How many example reads are left for this answer."""

    def __init__(self) -> None:
        self.left = MAX_EXAMPLES

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _entry_examples(
    fetch: Fetch, window: TimeWindow, budget: _Budget
) -> dict[tuple[str, str], str | None]:
    """One read for every broken operation: its service's spans in the latest minute
    holding an unparented one (zone maps keep the read to those minutes' range)."""
    latest = _last_minutes(
        fetch,
        f"""SELECT service, operation, max(minute) FROM (
    SELECT minute, service, operation, sum(unparented) AS broken FROM {ENTRIES}
    WHERE minute >= ? AND minute < ? GROUP BY ALL)
WHERE broken > 0 GROUP BY service, operation""",
        list(minutes(window)),
    )
    chosen = sorted(latest.items())[: budget.left]
    budget.left -= len(chosen)
    if not chosen:
        return {}
    pairs = sorted({(key[0], minute) for key, minute in chosen})
    low = max(window.start_ns, min(m for _, m in pairs) * MINUTE_NS)
    high = min(window.end_ns, (max(m for _, m in pairs) + 1) * MINUTE_NS)
    # Spans counted under "(other)" carry a name the service's kept names lack.
    rows = fetch(
        f"""SELECT s.service_name, coalesce(r.operation, '{OTHER}'), min(s.trace_id)
FROM {TABLE} AS s
JOIN (SELECT unnest(?::VARCHAR[]) AS service, unnest(?::BIGINT[]) AS minute) AS k
  ON k.service = s.service_name AND k.minute = s.start_ns // {MINUTE_NS}
LEFT JOIN {NAMES} AS r ON r.service = s.service_name AND r.operation = s.name
WHERE s.start_ns >= ? AND s.start_ns < ? AND s.kind IN ('server', 'consumer') AND {UNPARENTED}
GROUP BY ALL""",
        [[p[0] for p in pairs], [p[1] for p in pairs], low, high],
    )
    found = {(row[0], row[1]): row[2] for row in rows}
    return {(key[0], key[1]): found.get((key[0], key[1])) for key, _ in chosen}


def _orphan_examples(fetch: Fetch, window: TimeWindow) -> dict[tuple[str], str | None]:
    """The kept orphans (``health_rollups``) name an example per service: no span read."""
    first, last = minutes(window)
    rows = fetch(
        f"SELECT service, min(trace_id) FROM {ORPHAN_SPANS}"
        " WHERE start_ns >= ? AND start_ns < ? GROUP BY service",
        [first * MINUTE_NS, last * MINUTE_NS],
    )
    return {(row[0],): row[1] for row in rows}


def _hop_examples(
    fetch: Fetch, window: TimeWindow, budget: _Budget
) -> dict[tuple[str, str, str], tuple[str | None, str | None]]:
    latest = _last_minutes(
        fetch,
        f"""SELECT producer, consumer, destination, max(minute) FROM (
    SELECT minute, producer, consumer, destination, sum(broken) AS broken FROM {HOPS}
    WHERE minute >= ? AND minute < ? GROUP BY ALL)
WHERE broken > 0 GROUP BY producer, consumer, destination""",
        list(minutes(window)),
    )
    found: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}
    for (producer, consumer, destination), minute in sorted(latest.items()):
        if not budget.take():
            break
        low, high = _span_range(minute, window)
        pairs = hop_pairs(
            f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns < ? AND service_name = ?)",
            f"(SELECT * FROM {TABLE} WHERE start_ns BETWEEN ? AND ? AND service_name = ?)",
        )
        # The producers' subquery comes first in the text, so its parameters do.
        rows = fetch(
            f"""SELECT producer_trace_id, consumer_trace_id FROM ({pairs})
WHERE destination = ? AND elsewhere AND NOT linked
ORDER BY consumer_trace_id, producer_trace_id LIMIT 1""",
            [
                low - PAIR_HORIZON_NS,
                high + PAIR_HORIZON_NS,
                producer,
                low,
                high,
                consumer,
                destination,
            ],
        )
        found[(producer, consumer, destination)] = (
            (rows[0][0], rows[0][1]) if rows else (None, None)
        )
    return found

"""Rollups behind error hotspots and propagation health, kept at ingest (schema version 5).

Four tables, each keyed by the minute a span started, written as delta rows and
folded like ``rollups``' tables (same transaction, same dedupe, same horizon):

- ``rollup_roots``: minute × service × operation × status × latency bucket of root
  spans (no parent, user traffic): the requests of "whole traces", so the failed
  and slow counts of a trace-level hotspot, and the slow threshold, read buckets;
- ``rollup_entries``: minute × service × operation of SERVER and CONSUMER spans:
  how many, and how many arrived *unparented* (no parent and no links);
- ``rollup_orphans``: minute × service: spans with a parent id but no parent span
  in their trace within ``PAIR_HORIZON_NS``; ``rollup_orphan_spans`` holds those
  spans' keys (trace, span and parent id, start, service), so a parent arriving
  later finds the orphans it ends by a join with this small table rather than a
  scan of the spans near it, and an example is read from it;
- ``rollup_hops``: minute (of the consumer) × producer service × consumer service
  × destination: PRODUCER/CONSUMER spans sharing a ``messaging.message.id`` within
  the horizon, how many ended in another trace without a link (*broken*) or with
  one (*linked*); ``rollup_message_spans`` (schema version 16) holds every stored
  PRODUCER and CONSUMER span's message id, destination, start and links, read out of
  its attributes' JSON once when it is stored, so a batch finds its hops by a join of
  ids with that table rather than by parsing the attributes of every messaging span
  stored near it (what a commit cost grew with: ``docs/performance.md``, "As stored
  spans near the batch grow").

Message hops are pairs, found like edges: the batch against stored spans near it,
each pair counted once whichever side arrives last. A span with no parent near it
when it is stored is an orphan (counted, and kept in ``rollup_orphan_spans``) until
its parent arrives: the batch's spans subtract the kept orphans they are parents of.
Operation names are capped with ``rollup_names`` (``OTHER`` past the cap), as in
the operation rollups; this module's statements run after those have registered
the batch's names.

Deletions subtract what they delete: whole traces (tail sampling, erasure) take
their roots, entries and orphans with them, and every message pair with a side
among them (a hop links two traces); retention drops whole minutes and subtracts
the cutoff's own minute. A span whose parent (or producer) aged out is left as it
was counted: not an orphan, still a hop, as an edge whose caller aged out still
counts in its callee's minute.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from typing import Final

import duckdb

from threadline import conventions
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.rollups import MINUTE_NS, NAMES, OTHER, PAIR_HORIZON_NS, Run
from threadline.server.storage.duckdb.schema import (
    ROLLUP_ENTRIES,
    ROLLUP_HOPS,
    ROLLUP_MESSAGE_SPANS,
    ROLLUP_ORPHAN_SPANS,
    ROLLUP_ORPHANS,
    ROLLUP_ROOTS,
    TABLE,
)
from threadline.server.storage.duckdb.sql import (
    HAS_PARENT,
    NO_PARENT,
    USER_TRAFFIC,
    Conditions,
    fetcher,
    json_pointer,
    traces_in,
    wrote_rows,
)
from threadline.server.storage.duckdb.strays import ADOPTED, LONELY, Strays

logger = logging.getLogger(__name__)

ROOTS: Final = ROLLUP_ROOTS
ENTRIES: Final = ROLLUP_ENTRIES
ORPHANS: Final = ROLLUP_ORPHANS
ORPHAN_SPANS: Final = ROLLUP_ORPHAN_SPANS
HOPS: Final = ROLLUP_HOPS
MESSAGE_SPANS: Final = ROLLUP_MESSAGE_SPANS

KEYS: Final[dict[str, tuple[str, ...]]] = {
    ROOTS: ("minute", "service", "operation", "status", "bucket"),
    ENTRIES: ("minute", "service", "operation"),
    ORPHANS: ("minute", "service"),
    HOPS: ("minute", "producer", "consumer", "destination"),
}
VALUES: Final[dict[str, tuple[str, ...]]] = {
    ROOTS: ("spans",),
    ENTRIES: ("spans", "unparented"),
    ORPHANS: ("orphans",),
    HOPS: ("messages", "broken", "linked"),
}

# Ranges the version-5 backfill is split into, as ``backfill.RANGES`` for version 3.
RANGES: Final = 20

_DOOMED: Final = "threadline_health_doomed"
_DOOMED_MESSAGES: Final = "threadline_health_doomed_messages"
_NEW_ORPHANS: Final = "threadline_new_orphans"
_BATCH_MESSAGES: Final = "threadline_batch_messages"
_FOLDED: Final = "threadline_health_folded"


def _literal(text: str) -> str:
    """A constant (never request text) as an SQL string literal."""
    if "'" in text:
        raise ValueError(f"{text!r} cannot be an SQL literal here")
    return f"'{text}'"


_MESSAGE_ID: Final = _literal(json_pointer(conventions.MESSAGING_MESSAGE_ID))
_DESTINATION: Final = _literal(json_pointer(conventions.MESSAGING_DESTINATION))
UNPARENTED: Final = f"{NO_PARENT} AND links = '[]'"
_CAPPED: Final = f"coalesce(r.operation, '{OTHER}')"
_NAMED: Final = f"LEFT JOIN {NAMES} AS r ON r.service = s.service_name AND r.operation = s.name"


def _roots_delta(source: str, sign: int) -> str:
    return f"""
INSERT INTO {ROOTS} (minute, service, operation, status, bucket, spans)
SELECT start_ns // {MINUTE_NS}, service_name, {_CAPPED}, status,
       {bucket_sql("duration_ns")}, {sign} * count(*)
FROM {source} AS s {_NAMED}
WHERE {NO_PARENT} AND {USER_TRAFFIC}
GROUP BY ALL"""


def _entries_delta(source: str, sign: int) -> str:
    return f"""
INSERT INTO {ENTRIES} (minute, service, operation, spans, unparented)
SELECT start_ns // {MINUTE_NS}, service_name, {_CAPPED}, {sign} * count(*),
       {sign} * count(*) FILTER (WHERE {UNPARENTED})
FROM {source} AS s {_NAMED}
WHERE kind IN ('server', 'consumer') AND {USER_TRAFFIC}
GROUP BY ALL"""


def _keep_orphans(run: Run, children: str, parents: str, params: Sequence[object]) -> None:
    """Keep, and count, the spans of ``children`` with a parent id and no parent among
    ``parents`` near them (``params``: both relations' parameters, in that order)."""
    run(
        f"""CREATE OR REPLACE TEMP TABLE {_NEW_ORPHANS} AS
SELECT c.trace_id, c.span_id, c.parent_span_id, c.start_ns, c.service_name AS service
FROM (SELECT trace_id, span_id, parent_span_id, start_ns, service_name FROM {children}
      WHERE {HAS_PARENT} AND {USER_TRAFFIC}) AS c
ANTI JOIN (SELECT trace_id, span_id, start_ns FROM {parents}) AS p
  ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
 AND abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS}""",
        params,
    )
    run(f"INSERT INTO {ORPHAN_SPANS} SELECT * FROM {_NEW_ORPHANS}", [])
    run(_orphans_delta(_NEW_ORPHANS, 1), [])
    run(f"DROP TABLE {_NEW_ORPHANS}", [])


def _orphans_delta(orphans: str, sign: int) -> str:
    """Count rows of ``ORPHAN_SPANS`` (or a relation of its shape) per minute and service."""
    return f"""
INSERT INTO {ORPHANS} (minute, service, orphans)
SELECT start_ns // {MINUTE_NS}, service, {sign} * count(*) FROM {orphans} GROUP BY ALL"""


def _forget_orphans(run: Run, condition: str, params: Sequence[object]) -> None:
    """Subtract, then drop, the kept orphans matching ``condition``."""
    run(_orphans_delta(f"(SELECT * FROM {ORPHAN_SPANS} WHERE {condition})", -1), params)
    run(f"DELETE FROM {ORPHAN_SPANS} WHERE {condition}", params)


def message_spans(spans: str) -> str:
    """The PRODUCER and CONSUMER spans of relation ``spans`` that carry a message id, as
    rows of ``MESSAGE_SPANS``: the id and destination read out of the attributes."""
    return f"""(SELECT * FROM (
    SELECT trace_id, span_id, kind, start_ns, service_name AS service,
           json_extract_string(attributes, {_MESSAGE_ID}) AS message_id,
           coalesce(json_extract_string(attributes, {_DESTINATION}), '') AS destination,
           links
    FROM {spans} WHERE kind IN ('producer', 'consumer'))
 WHERE message_id IS NOT NULL)"""


def message_pairs(consumers: str, producers: str) -> str:
    """Producer/consumer pairs sharing a message id within the horizon, one row each,
    from two relations of ``MESSAGE_SPANS`` rows (the producers' text comes first)."""
    return f"""
SELECT c.start_ns // {MINUTE_NS} AS minute, p.service AS producer, c.service AS consumer,
       p.destination, p.trace_id <> c.trace_id AS elsewhere,
       contains(c.links, p.span_id) AS linked,
       p.trace_id AS producer_trace_id, c.trace_id AS consumer_trace_id
FROM (SELECT * FROM {producers} WHERE kind = 'producer') AS p
JOIN (SELECT * FROM {consumers} WHERE kind = 'consumer') AS c
  ON c.message_id = p.message_id
WHERE abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS}"""


def hop_pairs(consumers: str, producers: str) -> str:
    """``message_pairs`` of two span relations."""
    return message_pairs(message_spans(consumers), message_spans(producers))


def _hops_delta(pairs: str, sign: int) -> str:
    return f"""
INSERT INTO {HOPS} (minute, producer, consumer, destination, messages, broken, linked)
SELECT minute, producer, consumer, destination, {sign} * count(*),
       {sign} * count(*) FILTER (WHERE elsewhere AND NOT linked),
       {sign} * count(*) FILTER (WHERE elsewhere AND linked)
FROM ({pairs}) GROUP BY minute, producer, consumer, destination"""


def _near(condition: str = "true") -> str:
    return f"(SELECT * FROM {TABLE} WHERE {condition} AND start_ns BETWEEN ? AND ?)"


def _kept_messages(condition: str) -> str:
    """Kept message spans matching ``condition`` that started in ``[?, ?]``."""
    return f"(SELECT * FROM {MESSAGE_SPANS} WHERE {condition} AND start_ns BETWEEN ? AND ?)"


def _not_in(spans: str, batch: str) -> str:
    return (
        f"(SELECT s.* FROM {spans} AS s"
        f" ANTI JOIN {batch} AS b ON s.trace_id = b.trace_id AND s.span_id = b.span_id)"
    )


def count(run: Run, fresh: str, near: Sequence[int], strays: Strays | None) -> None:
    """Count the batch ``fresh`` (deduplicated, already stored) into the tables.

    ``near`` bounds the stored spans a pair may reach (the batch's start times
    widened by the horizon); ``strays`` says what ``strays.set_apart`` found (None
    skips the pair lookups: a batch of nothing but the SDK's own telemetry). The roots
    and entries of the batch are counted by ``span_groups``, with ``rollups``' own
    per-span tables.
    """
    bounds = list(near)
    if strays is None:
        return
    # Orphans kept from earlier batches whose parent arrived now (no longer orphans),
    # then the batch's own: a span with its parent in the batch is no orphan, so only
    # the lonely ones are looked up.
    if strays.adopted:
        run(_orphans_delta(ADOPTED, -1), [])
        run(
            f"DELETE FROM {ORPHAN_SPANS} AS o USING {ADOPTED} AS a"
            " WHERE o.trace_id = a.trace_id AND o.span_id = a.span_id",
            [],
        )
    if strays.lonely:
        _keep_orphans(run, LONELY, _near(), bounds)
    # Most services send no messages: a batch without a message span cannot complete a
    # hop, and the lookup is skipped.
    batch_messages = run(
        f"CREATE OR REPLACE TEMP TABLE {_BATCH_MESSAGES} AS SELECT * FROM {message_spans(fresh)}",
        [],
    )
    if wrote_rows(batch_messages):
        # The batch's message spans are kept first, so its own pairs are found too.
        run(f"INSERT INTO {MESSAGE_SPANS} SELECT * FROM {_BATCH_MESSAGES}", [])
        producers_first = message_pairs(_BATCH_MESSAGES, _kept_messages("kind = 'producer'"))
        consumers_first = message_pairs(
            _not_in(_kept_messages("kind = 'consumer'"), fresh), _BATCH_MESSAGES
        )
        run(_hops_delta(f"{producers_first} UNION ALL {consumers_first}", 1), [*bounds, *bounds])
    run(f"DROP TABLE {_BATCH_MESSAGES}", [])


def _span_bounds(run: Run, relation: str) -> list[int] | None:
    rows = run(f"SELECT min(start_ns), max(start_ns) FROM {relation}", [])
    if not rows or rows[0][0] is None:
        return None
    return [int(rows[0][0]) - PAIR_HORIZON_NS, int(rows[0][1]) + PAIR_HORIZON_NS]


def forget_traces(
    run: Run, trace_ids: Sequence[str], *, erasing: bool = False, within: Conditions | None = None
) -> None:
    """Subtract the given traces (about to be deleted whole) from the tables.

    Runs before ``rollups.forget_traces``, which may drop the kept names these rows
    were counted under. A message pair with either side in the traces goes. With
    ``erasing``, the subtracted minutes are folded at once (see ``rollups``).
    ``within``: where the traces' spans start (``sql.traces_in``).
    """
    doomed = traces_in(trace_ids, within)
    run(
        f"CREATE OR REPLACE TEMP TABLE {_DOOMED} AS SELECT * FROM {TABLE}{doomed.sql('WHERE')}",
        doomed.params,
    )
    bounds = _span_bounds(run, _DOOMED)
    if bounds is not None:
        run(_roots_delta(_DOOMED, -1), [])
        run(_entries_delta(_DOOMED, -1), [])
        _forget_orphans(run, "trace_id IN (SELECT unnest(?::VARCHAR[]))", [list(trace_ids)])
        _forget_hops(run, doomed, bounds)
        if erasing:
            compact(run)
    run(f"DELETE FROM {MESSAGE_SPANS}{doomed.sql('WHERE')}", doomed.params)
    run(f"DROP TABLE {_DOOMED}", [])


def _forget_hops(run: Run, doomed: Conditions, bounds: Sequence[int]) -> None:
    """Subtract the message pairs with either side among the doomed traces' spans.

    Both sides come from the kept message spans (``MESSAGE_SPANS``, ids already read out
    of the attributes), as ingest pairs them: read again from the span table, every
    producer and consumer within the horizon of the doomed traces had its attributes
    parsed, about 40 ms of a 280 ms delete of 200 recent traces at 10M spans, now about
    8 (``bench/writer_upkeep.py``, ``docs/performance.md``)."""
    run(
        f"CREATE OR REPLACE TEMP TABLE {_DOOMED_MESSAGES} AS"
        f" SELECT * FROM {MESSAGE_SPANS}{doomed.sql('WHERE')}",
        doomed.params,
    )
    doomed_consumers = message_pairs(_DOOMED_MESSAGES, _kept_messages("kind = 'producer'"))
    kept_consumers = message_pairs(
        _not_in(_kept_messages("kind = 'consumer'"), _DOOMED_MESSAGES), _DOOMED_MESSAGES
    )
    run(_hops_delta(f"{doomed_consumers} UNION ALL {kept_consumers}", -1), [*bounds, *bounds])
    run(f"DROP TABLE {_DOOMED_MESSAGES}", [])


def forget_before(run: Run, cutoff_ns: int) -> None:
    """Drop the minutes retention removes; the cutoff's own minute loses its spans."""
    cutoff_minute = cutoff_ns // MINUTE_NS
    for table in KEYS:
        run(f"DELETE FROM {table} WHERE minute < ?", [cutoff_minute])
    run(f"DELETE FROM {ORPHAN_SPANS} WHERE start_ns < ?", [cutoff_minute * MINUTE_NS])
    run(f"DELETE FROM {MESSAGE_SPANS} WHERE start_ns < ?", [cutoff_ns])
    _forget_orphans(run, "start_ns < ?", [cutoff_ns])
    if cutoff_ns % MINUTE_NS:
        run(
            f"CREATE OR REPLACE TEMP TABLE {_DOOMED} AS SELECT * FROM {TABLE}"
            " WHERE start_ns >= ? AND start_ns < ?",
            [cutoff_minute * MINUTE_NS, cutoff_ns],
        )
        bounds = _span_bounds(run, _DOOMED)
        if bounds is not None:
            run(_roots_delta(_DOOMED, -1), [])
            run(_entries_delta(_DOOMED, -1), [])
            run(_hops_delta(hop_pairs(_DOOMED, _near("kind = 'producer'")), -1), bounds)
        run(f"DROP TABLE {_DOOMED}", [])


def rebuild(run: Run, start_ns: int, end_ns: int) -> None:
    """Count every stored span that started in ``[start_ns, end_ns)`` (backfill)."""
    source = f"(SELECT * FROM {TABLE} WHERE start_ns >= ? AND start_ns < ?)"
    span_range = [start_ns, end_ns]
    near = [start_ns - PAIR_HORIZON_NS, end_ns + PAIR_HORIZON_NS]
    run(_roots_delta(source, 1), span_range)
    run(_entries_delta(source, 1), span_range)
    _keep_orphans(run, source, _near(), [*span_range, *near])
    # The producers' subquery comes first in the statement's text, so its bounds do.
    run(_hops_delta(hop_pairs(source, _near("kind = 'producer'")), 1), [*near, *span_range])


def compact(run: Run) -> None:
    """Fold each minute that received deltas into one row per key; zero sums go."""
    for table, keys in KEYS.items():
        key_list = ", ".join(keys)
        sums = ", ".join(f"sum({column})" for column in VALUES[table])
        nonzero = " OR ".join(f"sum({column}) <> 0" for column in VALUES[table])
        touched = f"minute IN (SELECT DISTINCT minute FROM {table} WHERE fresh)"
        run(
            f"CREATE OR REPLACE TEMP TABLE {_FOLDED} AS SELECT {key_list}, {sums}"
            f" FROM {table} WHERE {touched} GROUP BY ALL HAVING {nonzero}",
            [],
        )
        run(f"DELETE FROM {table} WHERE {touched}", [])
        columns = ", ".join(keys + VALUES[table])
        run(f"INSERT INTO {table} ({columns}, fresh) SELECT *, false FROM {_FOLDED}", [])
        run(f"DROP TABLE {_FOLDED}", [])


def fill_message_spans(run: Run) -> None:
    """Keep every stored span's message id (the version-16 step; the table is empty)."""
    run(f"INSERT INTO {MESSAGE_SPANS} SELECT * FROM {message_spans(TABLE)}", [])


def fill(connection: duckdb.DuckDBPyConnection) -> None:
    """Count every stored span into the (empty) tables, in the open transaction, logging
    each range of minutes as it completes (the version-5 step)."""
    bounds = connection.execute(f"SELECT min(start_ns), max(start_ns) FROM {TABLE}").fetchall()
    low, high = bounds[0]
    if low is None:
        return
    first = int(low) // MINUTE_NS
    last = int(high) // MINUTE_NS + 1
    step = max(1, -(-(last - first) // RANGES))
    edges = [*range(first, last, step), last]
    started = time.perf_counter()

    run = fetcher(connection)
    for done, (start, end) in enumerate(itertools.pairwise(edges), start=1):
        rebuild(run, start * MINUTE_NS, end * MINUTE_NS)
        logger.info(
            "building hotspot and propagation rollups from stored spans:"
            " %d of %d ranges done (%.1f s)",
            done,
            len(edges) - 1,
            time.perf_counter() - started,
        )

"""Rollups that need other spans than the inserted block's: calls, message hops, orphans.

The writer stages the batch's keys under its own id (``staging``), inserts the
batch (its materialized views count what the block alone says, ``rollup_tables``),
and ``count_batch`` then runs one ``INSERT … SELECT`` per table over the stored
spans of the staged keys, bounded to the batch's trace ids (a call and an orphan's
parent are in the same trace; the span table's trace-id bloom filter skips the
rest) and to its start times widened by ``PAIR_HORIZON_NS``; the writer drops its
batch afterwards. A pair is counted once, when its second span arrives, in the
callee's (consumer's) minute: the batch's callees against every stored caller (the
batch's own included), then the batch's callers against stored callees not in the
batch. Message hops join two traces by ``messaging.message.id``, bounded by time
and by the batch's message ids. Another writer's batch in flight is never read as
this one's: a side in it is left to that writer's count (``staged``).

An orphan is a span whose parent id names no span stored within the horizon: kept
in ``orphan_spans`` with ``+1``, and given ``-1`` when its parent arrives later.

Deletions subtract what they delete, before the spans go: whole traces take their
calls, orphans, hops (either side) and summaries; retention takes the calls and hops
whose callee (consumer) it deletes, the orphans and summary rows before the cutoff,
and the entry spans it deletes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from threadline.server.aggregates import EdgeKind
from threadline.server.storage.clickhouse import staged
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.rollup_tables import (
    DATA_TABLES,
    HOP_ROLLUP,
    MINUTE_NS,
    ORPHAN_SPANS,
    PAIR_HORIZON_NS,
    PAIR_ROLLUP,
    PAIR_SELECT,
    REQUEST_ROLLUP,
    TRACE_ROLLUP,
    USER_TRAFFIC,
    bucket,
    request_delta,
    trace_rows,
)
from threadline.server.storage.clickhouse.schema import quote
from threadline.server.storage.clickhouse.staged import Batch
from threadline.server.storage.clickhouse.tables import Row, Tables

logger = logging.getLogger(__name__)

DAY_NS: Final = 1440 * MINUTE_NS

Fetch = Callable[[str, Mapping[str, object]], list[Row]]
Command = Callable[[str, Mapping[str, object]], None]


class Names:
    """The qualified names of this module's tables in one database."""

    def __init__(self, t: Tables) -> None:
        db = quote(t.database)
        self.t = t
        self.spans = t.spans
        self.pairs = f"{db}.{PAIR_ROLLUP}"
        self.hops = f"{db}.{HOP_ROLLUP}"
        self.orphans = f"{db}.{ORPHAN_SPANS}"
        self.requests = f"{db}.{REQUEST_ROLLUP}"
        self.traces = f"{db}.{TRACE_ROLLUP}"


def near(n: Names, condition: str, batch: Batch | None = None) -> str:
    """Stored spans (user traffic) matching ``condition``, in the pair columns, started
    in ``[{lo}, {hi}]`` (the partition and primary-index bounds); with ``batch``, a
    column ``own`` tells its spans (one read serves both sides of a join)."""
    own = f", toUInt8({batch.member()}) AS own" if batch else ""
    return (
        f"(SELECT {PAIR_SELECT}{own} FROM {n.spans} WHERE {USER_TRAFFIC} AND ({condition})"
        " AND start_ns >= {lo:Int64} AND start_ns <= {hi:Int64})"
    )


def pairs(callees: str, callers: str, pair_filter: str = "") -> str:
    """Caller/callee pairs of two relations in the pair columns, one row per call.

    The kinds are the DuckDB store's: a CLIENT parent of a SERVER span is a call, a
    PRODUCER parent of a CONSUMER a message, any other parent of a SERVER span in
    another service an inferred call.
    """
    return f"""SELECT * FROM (
    SELECT intDiv(c.start_ns, {MINUTE_NS}) AS minute, p.service_name AS caller,
           c.service_name AS callee,
           multiIf(p.kind = 'client' AND c.kind = 'server', '{EdgeKind.CALL.value}',
                   p.kind = 'producer' AND c.kind = 'consumer', '{EdgeKind.MESSAGE.value}',
                   c.kind = 'server' AND p.service_name != c.service_name,
                   '{EdgeKind.INFERRED.value}', '') AS kind,
           {bucket("c.duration_ns")} AS bucket, c.status AS status,
           toUInt8(p.resent = 1 OR c.redelivered = 1) AS retried, c.synthetic AS synthetic
    FROM (SELECT * FROM {callees} WHERE kind IN ('server', 'consumer') AND parent_span_id != '')
         AS c
    INNER JOIN {callers} AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    WHERE abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS}{pair_filter})
WHERE kind != ''"""


def _pairs_delta(n: Names, pair_sql: str, sign: int) -> str:
    return f"""INSERT INTO {n.pairs}
    (minute, caller, callee, kind, bucket, status, retried, synthetic, calls)
SELECT minute, caller, callee, kind, bucket, status, retried, synthetic,
       toInt64({sign} * count())
FROM ({pair_sql})
GROUP BY minute, caller, callee, kind, bucket, status, retried, synthetic"""


def hop_pairs(consumers: str, producers: str, pair_filter: str = "") -> str:
    """Producer/consumer pairs sharing a message id within the horizon, one row each."""
    return f"""SELECT intDiv(c.start_ns, {MINUTE_NS}) AS minute, p.service_name AS producer,
       c.service_name AS consumer, p.destination AS destination,
       toUInt8(p.trace_id != c.trace_id) AS elsewhere,
       toUInt8(position(c.links, p.span_id) > 0) AS linked,
       p.trace_id AS producer_trace_id, c.trace_id AS consumer_trace_id
FROM (SELECT * FROM {consumers} WHERE kind = 'consumer' AND message_id != '') AS c
INNER JOIN (SELECT * FROM {producers} WHERE kind = 'producer' AND message_id != '') AS p
  ON c.message_id = p.message_id
WHERE abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS}{pair_filter}"""


def _hops_delta(n: Names, pair_sql: str, sign: int) -> str:
    # An example per key: the broken ones first, so a key's example shows a break.
    return f"""INSERT INTO {n.hops} (minute, producer, consumer, destination, elsewhere, linked,
    messages, producer_trace_id, consumer_trace_id)
SELECT minute, producer, consumer, destination, elsewhere, linked, toInt64({sign} * count()),
       min(producer_trace_id), min(consumer_trace_id)
FROM ({pair_sql})
GROUP BY minute, producer, consumer, destination, elsewhere, linked"""


def _orphans(n: Names, children: str, parents: str, sign: int) -> str:
    """``orphan_spans`` rows (``sign``) of the spans of ``children`` with a parent id
    and no parent among ``parents`` near them (a missing parent joins as '')."""
    return f"""INSERT INTO {n.orphans} (trace_id, span_id, parent_span_id, start_ns, service, sign)
SELECT c.trace_id, c.span_id, c.parent_span_id, c.start_ns, c.service_name, toInt64({sign})
FROM (SELECT * FROM {children} WHERE parent_span_id != '') AS c
LEFT JOIN {parents} AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
GROUP BY c.trace_id, c.span_id, c.parent_span_id, c.start_ns, c.service_name
HAVING countIf(p.span_id != '' AND abs(c.start_ns - p.start_ns) <= {PAIR_HORIZON_NS}) = 0
SETTINGS join_use_nulls = 0"""


def kept_orphans(n: Names, condition: str) -> str:
    """Orphans still kept (their rows sum to one) matching ``condition``."""
    return f"""(SELECT trace_id, span_id, parent_span_id, start_ns, service FROM {n.orphans}
WHERE {condition}
GROUP BY trace_id, span_id, parent_span_id, start_ns, service HAVING sum(sign) > 0)"""


def _adopted(n: Names, traces: str, batch: str) -> str:
    """Minus one for each kept orphan (of the trace ids ``traces``) whose parent is in
    ``batch``."""
    return f"""INSERT INTO {n.orphans} (trace_id, span_id, parent_span_id, start_ns, service, sign)
SELECT DISTINCT o.trace_id, o.span_id, o.parent_span_id, o.start_ns, o.service, toInt64(-1)
FROM {kept_orphans(n, f"trace_id IN {traces}")} AS o
INNER JOIN {batch} AS p ON o.trace_id = p.trace_id AND o.parent_span_id = p.span_id
WHERE abs(p.start_ns - o.start_ns) <= {PAIR_HORIZON_NS}"""


def _message_in(relation: str) -> str:
    """A stored span (its map) carries a message id that ``relation`` holds."""
    return (
        "attributes['messaging.message.id'] IN"
        f" (SELECT message_id FROM {relation} WHERE message_id != '')"
    )


def count_batch(
    fetch: Fetch,
    command: Command,
    t: Tables,
    batch: Batch,
    low_ns: int,
    high_ns: int,
    *,
    later: bool = True,
) -> None:
    """Count the writer's staged ``batch`` (its starts within ``low_ns`` … ``high_ns``,
    its spans stored) into the pair tables; the caller drops the batch afterwards.

    ``later`` False (backfill, oldest first): stored spans not in the batch are not
    counted yet, so a pair is counted only from its callee's (consumer's) side.
    """
    n = Names(t)
    params = {**batch.params, "lo": low_ns - PAIR_HORIZON_NS, "hi": high_ns + PAIR_HORIZON_NS}
    traces = f"trace_id IN {batch.traces}"
    # A side in another writer's batch in flight is left to that writer (``staged``).
    settled = batch.settled()
    # The stored spans of the batch's traces, its own marked: a pair is the batch's
    # when either side is its own (``later`` False: when the callee is).
    spans = near(n, f"{traces} AND {settled}", batch)
    own = " AND (c.own = 1 OR p.own = 1)" if later else " AND c.own = 1"
    command(_pairs_delta(n, pairs(spans, spans, own), 1), params)
    # Kept orphans the batch holds the parent of, then the batch's own orphans (any
    # stored parent will do: one in a batch in flight takes nothing back later).
    mine = near(n, f"{traces} AND {batch.member()}")
    command(_adopted(n, batch.traces, mine), params)
    command(_orphans(n, mine, near(n, traces), 1), params)
    if fetch(f"SELECT 1 FROM {mine} WHERE message_id != '' LIMIT 1", params):
        # Conditions on the stored spans' maps: only spans of the batch's messages.
        carriers = near(n, f"{_message_in(mine)} AND {settled}", batch)
        command(_hops_delta(n, hop_pairs(carriers, carriers, own), 1), params)


def forget_traces(fetch: Fetch, command: Command, t: Tables, trace_ids: Sequence[str]) -> None:
    """Subtract whole traces about to be deleted from every table of ``rollup_tables``."""
    n = Names(t)
    ids = "trace_id IN {ids:Array(String)}"
    bounds = fetch(
        f"SELECT count(), min(start_ns), max(start_ns) FROM {n.spans} WHERE {ids}",
        _ids(trace_ids),
    )
    if not bounds or not bounds[0][0]:
        return
    params: dict[str, object] = {
        **_ids(trace_ids),
        "lo": int(bounds[0][1]) - PAIR_HORIZON_NS,
        "hi": int(bounds[0][2]) + PAIR_HORIZON_NS,
    }
    command(
        f"INSERT INTO {n.requests} {request_delta(_spans_where(n, ids), -1)}",
        params,
    )
    doomed = near(n, ids)
    command(_pairs_delta(n, pairs(doomed, doomed), -1), params)
    command(
        f"""INSERT INTO {n.orphans} (trace_id, span_id, parent_span_id, start_ns, service, sign)
SELECT trace_id, span_id, parent_span_id, start_ns, service, toInt64(-1)
FROM {kept_orphans(n, ids)}""",
        params,
    )
    if fetch(f"SELECT 1 FROM {doomed} WHERE message_id != '' LIMIT 1", params):
        # A hop with either side in the traces: both sides doomed, or one of them.
        others = near(n, f"NOT ({ids}) AND {_message_in(doomed)}")
        hops = (
            f"{hop_pairs(doomed, doomed)} UNION ALL {hop_pairs(others, doomed)}"
            f" UNION ALL {hop_pairs(doomed, others)}"
        )
        command(_hops_delta(n, hops, -1), params)
    command(f"DELETE FROM {t.parts_of(TRACE_ROLLUP)} WHERE {ids}", params)


def forget_before(fetch: Fetch, command: Command, t: Tables, cutoff_ns: int) -> None:
    """Subtract what retention deletes: spans that started before ``cutoff_ns``."""
    n = Names(t)
    cutoff = {"cutoff": cutoff_ns}
    rows = fetch(f"SELECT min(start_ns) FROM {n.spans} WHERE start_ns < {{cutoff:Int64}}", cutoff)
    if (
        not rows
        or rows[0][0] is None
        or not fetch(f"SELECT 1 FROM {n.spans} WHERE start_ns < {{cutoff:Int64}} LIMIT 1", cutoff)
    ):
        return
    params: dict[str, object] = {
        **cutoff,
        "lo": int(rows[0][0]) - PAIR_HORIZON_NS,
        "hi": cutoff_ns + PAIR_HORIZON_NS,
    }
    old = _spans_where(n, "start_ns < {cutoff:Int64}")
    command(f"INSERT INTO {n.requests} {request_delta(old, -1)}", params)
    doomed = near(n, "start_ns < {cutoff:Int64}")
    command(_pairs_delta(n, pairs(doomed, near(n, "true")), -1), params)
    command(
        f"""INSERT INTO {n.orphans} (trace_id, span_id, parent_span_id, start_ns, service, sign)
SELECT trace_id, span_id, parent_span_id, start_ns, service, toInt64(-1)
FROM {kept_orphans(n, "start_ns < {cutoff:Int64}")}""",
        params,
    )
    consumers = near(n, "start_ns < {cutoff:Int64} AND kind = 'consumer'")
    if fetch(f"SELECT 1 FROM {consumers} WHERE message_id != '' LIMIT 1", params):
        producers = near(n, "kind = 'producer'")
        command(_hops_delta(n, hop_pairs(consumers, producers), -1), params)
    command(f"DELETE FROM {t.parts_of(TRACE_ROLLUP)} WHERE start_ns < {{cutoff:Int64}}", params)


def backfill(connection: Connection, t: Tables) -> None:
    """Build the tables of ``rollup_tables`` from the spans stored (a schema version 1
    database), replacing whatever they hold: the step schema version 2 runs on open,
    before the writer starts.

    The views' rows come from the spans themselves; the pairs and orphans by
    ``count_batch``, a day's spans staged as one batch at a time, oldest first, each
    pair counted from its callee's (consumer's) side only, so once. Progress is logged per day.
    """

    def fetch(sql: str, params: Mapping[str, object]) -> list[Row]:
        return connection.rows(sql, params, doing="building the rollups")

    def command(sql: str, params: Mapping[str, object]) -> None:
        connection.command(sql, params, doing="building the rollups")

    n = Names(t)
    for table in DATA_TABLES:
        command(f"TRUNCATE TABLE {t.parts_of(table)}", {})
    command(f"INSERT INTO {n.requests} {request_delta(n.spans, 1)}", {})
    command(f"INSERT INTO {n.traces} {trace_rows(n.spans)}", {})
    day = f"intDiv(start_ns, {DAY_NS})"
    days = sorted(int(row[0]) for row in fetch(f"SELECT DISTINCT {day} FROM {n.spans}", {}))
    batch = Batch.of(t.database, f"backfill-{uuid.uuid4().hex}")
    started = time.perf_counter()
    for done, number in enumerate(days, start=1):
        params = {**batch.params, "day": number}
        command(staged.drop(t), batch.params)
        command(staged.stage_stored(batch, t, f"{USER_TRAFFIC} AND {day} = {{day:Int64}}"), params)
        high = (number + 1) * DAY_NS - 1
        count_batch(fetch, command, t, batch, number * DAY_NS, high, later=False)
        logger.info(
            "building the ClickHouse rollups from stored spans: %d of %d days done (%.1f s)",
            done,
            len(days),
            time.perf_counter() - started,
        )
    command(staged.drop(t), batch.params)


def _spans_where(n: Names, condition: str) -> str:
    """The spans matching ``condition``, their alias columns included."""
    return f"(SELECT *, end_ns, duration_ns FROM {n.spans} WHERE {condition})"


def _ids(trace_ids: Sequence[str]) -> dict[str, object]:
    return {"ids": list(trace_ids)}

"""A batch's spans grouped once, for every per-span rollup of the ingest transaction.

``rollup_operations``, ``rollup_synthetic``, ``rollup_services``, ``rollup_roots`` and
``rollup_entries`` count spans by minute × service × name (× status × latency
bucket), each with its own filter, and ``rollup_exemplars`` picks a span per such
key. Each used to read the batch itself, computing the minute, the bucket and the
kept name (a join with ``rollup_names``) again: six passes over the batch's spans.
``build`` reads the batch once into a small temporary table (a row per minute ×
service × name × status × bucket × the flags the filters test; ~1,500 rows for
10,000 spans of the benchmark's shop) and the deltas below sum its rows, each
joining the kept names on that small table.

The answers are the same sums: every filter of the per-span statements is a
function of the group's key (the flags), and each value (spans, the duration sum,
unparented spans) is a count or sum that adds up across groups, and a key's example
is the first of its groups' examples (``exemplar_candidates``). The bucket is
computed for entry spans only (roots are entry spans); other spans are counted by
``rollup_services`` alone, which has no bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.aggregates import OTHER_OPERATION
from threadline.server.storage.duckdb import exemplars
from threadline.server.storage.duckdb.buckets import bucket_sql
from threadline.server.storage.duckdb.schema import (
    ROLLUP_ENTRIES,
    ROLLUP_NAMES,
    ROLLUP_OPERATIONS,
    ROLLUP_ROOTS,
    ROLLUP_SERVICES,
    ROLLUP_SYNTHETIC,
)
from threadline.server.storage.duckdb.slo_rollups import DURATION_STATUS
from threadline.server.storage.duckdb.sql import ENTRY, ERROR, NO_PARENT, USER_TRAFFIC, Row
from threadline.server.storage.duckdb.sql import synthetic as is_synthetic

Run = Callable[[str, Sequence[object]], list[Row]]

# The rollups' minute (``rollups.MINUTE_NS``; that module calls this one).
MINUTE_NS: Final = 60_000_000_000
GROUPS: Final = "threadline_span_groups"

# What ``health_rollups`` counts as an entry span that arrived without a parent.
_UNPARENTED: Final = f"{NO_PARENT} AND links = '[]'"
_KEPT: Final = (
    f"coalesce(r.operation, '{OTHER_OPERATION}') AS operation"
    f" FROM {GROUPS} AS g"
    f" LEFT JOIN {ROLLUP_NAMES} AS r ON r.service = g.service AND r.operation = g.name"
)


def build(run: Run, source: str, params: Sequence[object], *, synthetic: bool = True) -> None:
    """Group the user spans of relation ``source`` into ``GROUPS`` (replaced);
    ``synthetic`` False: no span is marked synthetic, and none is parsed for it."""
    marked = is_synthetic() if synthetic else "false"
    run(
        f"""CREATE OR REPLACE TEMP TABLE {GROUPS} AS
SELECT start_ns // {MINUTE_NS} AS minute, service_name AS service, name, status,
       entry, {NO_PARENT} AS root, kind IN ('server', 'consumer') AS serving,
       {marked} AS synthetic,
       CASE WHEN entry THEN {bucket_sql("duration_ns")} END AS bucket,
       count(*) AS spans, sum(duration_ns) AS duration_sum,
       count(*) FILTER (WHERE {_UNPARENTED}) AS unparented,
       arg_min({{'trace_id': trace_id, 'duration_ns': duration_ns, 'start_ns': start_ns}},
               (-duration_ns, trace_id)) AS example
FROM (SELECT *, {ENTRY} AS entry FROM {source} WHERE {USER_TRAFFIC})
GROUP BY ALL""",
        params,
    )


def exemplar_candidates() -> str:
    """Each entry group's example, as ``exemplars.insert`` takes candidates.

    ``exemplars`` keeps per key the candidate first in (failing, slowest, least trace
    id) order. A group's status, and so its failing flag, is one; its example is its
    slowest span, the least trace id among equals, so the first candidate of a key
    among the groups' examples is the first among all of its spans. Synthetic journeys'
    spans are no candidates: ``/metrics`` leaves them out of the buckets they would mark.
    """
    return f"""
SELECT minute, service, operation, {exemplars.slot_sql("bucket")} AS slot,
       example.trace_id AS trace_id, example.duration_ns AS duration_ns,
       example.start_ns AS start_ns, status = '{ERROR}' AS failed
FROM (SELECT g.*, {_KEPT} WHERE entry AND NOT synthetic)"""


def drop(run: Run) -> None:
    run(f"DROP TABLE {GROUPS}", [])


def deltas(sign: int, *, synthetic: bool) -> list[str]:
    """The statements adding ``GROUPS`` (times ``sign``) to the tables it feeds.

    ``synthetic`` False: no span of the batch is marked synthetic, so the synthetic
    rollup has nothing to count.
    """
    statements = [
        f"""
INSERT INTO {ROLLUP_OPERATIONS} (minute, service, operation, status, bucket, spans, duration_sum)
SELECT minute, g.service, operation, status, bucket, {sign} * sum(spans),
       {sign} * sum(duration_sum)
FROM (SELECT g.*, {_KEPT} WHERE entry) AS g
GROUP BY minute, g.service, operation, status, bucket""",
        f"""
INSERT INTO {ROLLUP_SERVICES} (minute, service, spans)
SELECT minute, service, {sign} * sum(spans) FROM {GROUPS} GROUP BY minute, service""",
        f"""
INSERT INTO {ROLLUP_ROOTS} (minute, service, operation, status, bucket, spans)
SELECT minute, g.service, operation, status, bucket, {sign} * sum(spans)
FROM (SELECT g.*, {_KEPT} WHERE root) AS g
GROUP BY minute, g.service, operation, status, bucket""",
        f"""
INSERT INTO {ROLLUP_ENTRIES} (minute, service, operation, spans, unparented)
SELECT minute, g.service, operation, {sign} * sum(spans), {sign} * sum(unparented)
FROM (SELECT g.*, {_KEPT} WHERE serving) AS g
GROUP BY minute, g.service, operation""",
    ]
    if synthetic:
        statements.append(
            f"""
INSERT INTO {ROLLUP_SYNTHETIC} (minute, service, operation, status, bucket, spans)
WITH kept AS (
    SELECT minute, g.service, operation, status, bucket, sum(spans) AS spans,
           sum(duration_sum) AS duration_sum
    FROM (SELECT g.*, {_KEPT} WHERE entry AND synthetic) AS g
    GROUP BY minute, g.service, operation, status, bucket
)
SELECT minute, service, operation, status, bucket, {sign} * spans FROM kept
UNION ALL
SELECT minute, service, operation, '{DURATION_STATUS}', bucket, {sign} * duration_sum
FROM kept"""
        )
    return statements

"""Rollups the SLO evaluator reads besides ``rollups``' own (schema version 7).

- ``rollup_retries``: minute (of the callee) × caller service × callee service: calls
  that were retries. A call is a retry when its CLIENT span carries
  ``http.request.resend_count`` > 0, a message when its CONSUMER span carries
  ``threadline.delivery.attempt`` > 1 (a redelivery). The edge's calls are in
  ``rollup_edges``; the share of retries is one over the other.
- ``rollup_synthetic``: the part of ``rollup_operations`` that synthetic and test
  journeys made (entry spans marked ``journey.synthetic=true``), same keys. An SLO leaves it
  out by subtracting it, so synthetic traffic costs no extra work at ingest unless
  there is some. Beside the span counts, each key's summed duration is kept under the
  status ``DURATION_STATUS`` (its ``spans`` then holds nanoseconds), so ``/metrics``
  can take synthetic time out of its duration sums too; span readers keep to
  ``SPAN_ROWS``.
- ``rollup_synthetic_edges``: the same for edges: minute × caller × callee × latency
  bucket of calls whose callee span is marked synthetic: calls and errors.

They are written by the same statements, in the same transaction, as the tables of
``rollups`` (which calls the functions here), appended as deltas and folded by
``rollups.compact`` like the others; rows exist only for minutes that had a retry
or synthetic traffic, so the tables stay small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.storage.duckdb.schema import (
    ROLLUP_RETRIES,
    ROLLUP_SYNTHETIC,
    ROLLUP_SYNTHETIC_EDGES,
)
from threadline.server.storage.duckdb.sql import ENTRY, ERROR, Row, synthetic

MINUTE_NS: Final = 60_000_000_000

# The ``status`` of ``rollup_synthetic`` rows whose ``spans`` holds the summed duration
# (ns) of the key's synthetic entry spans, not a count. No span has this status, and
# every reader of span counts keeps to ``SPAN_ROWS``.
DURATION_STATUS: Final = "(duration)"
SPAN_ROWS: Final = f"status <> '{DURATION_STATUS}'"

Run = Callable[[str, Sequence[object]], list[Row]]

# Key and value columns, for ``rollups.compact`` (``fresh`` marks rows not yet folded).
KEYS: Final[dict[str, tuple[str, ...]]] = {
    ROLLUP_RETRIES: ("minute", "caller", "callee"),
    ROLLUP_SYNTHETIC: ("minute", "service", "operation", "status", "bucket"),
    ROLLUP_SYNTHETIC_EDGES: ("minute", "caller", "callee", "bucket"),
}
VALUES: Final[dict[str, tuple[str, ...]]] = {
    ROLLUP_RETRIES: ("retried",),
    ROLLUP_SYNTHETIC: ("spans",),
    ROLLUP_SYNTHETIC_EDGES: ("calls", "errors"),
}

# Columns ``edge_pairs.pairs`` adds for these tables: whether the call was a retry, and
# whether it belongs to a synthetic journey. The JSON pointers are fixed text.
# Attributes are JSON written by ``batch.dumps``, which spells these keys as they are
# (ASCII without characters to escape): a span whose text lacks the key has no such
# attribute, so ``contains`` (a byte search) spares the JSON parse of most spans and
# changes no answer.
RESEND_KEY: Final = "http.request.resend_count"
ATTEMPT_KEY: Final = "threadline.delivery.attempt"
_RETRIED: Final = f""",
           (p.kind = 'client' AND contains(p.attributes, '{RESEND_KEY}')
            AND coalesce(TRY_CAST(json_extract_string(
                p.attributes, '/{RESEND_KEY}') AS BIGINT), 0) > 0)
           OR (c.kind = 'consumer' AND contains(c.attributes, '{ATTEMPT_KEY}')
            AND coalesce(TRY_CAST(json_extract_string(
                c.attributes, '/{ATTEMPT_KEY}') AS BIGINT), 1) > 1)
           AS retried,
           """


def pair_columns(*, synthetic_callees: bool = True, retries: bool = True) -> str:
    """The columns above; ``synthetic_callees`` False: no callee is marked synthetic
    (the writer knows when a batch holds no marker), and none is parsed for it;
    ``retries`` False: neither side carries a retry key, and no attributes are read."""
    marked = synthetic("c") if synthetic_callees else "false"
    retried = _RETRIED if retries else ", false AS retried, "
    return f"{retried}{marked} AS synthetic"


def synthetic_delta(source: str, sign: int, operation: str, bucket: str) -> str:
    """Synthetic entry spans of ``source``, as ``rollups._operation_delta`` counts them,
    and their summed duration under ``DURATION_STATUS``.

    ``operation`` and ``bucket`` are the SQL expressions ``rollups`` uses (the kept
    name or ``(other)``, and the latency bucket), so both tables agree key by key.
    """
    return f"""
INSERT INTO {ROLLUP_SYNTHETIC} (minute, service, operation, status, bucket, spans)
WITH g AS (
    SELECT start_ns // {MINUTE_NS} AS minute, service_name AS service,
           {operation} AS operation, status, {bucket} AS bucket,
           count(*) AS spans, sum(duration_ns) AS duration_sum
    FROM {source} AS s
    LEFT JOIN rollup_names AS r ON r.service = s.service_name AND r.operation = s.name
    WHERE {ENTRY} AND {synthetic()}
    GROUP BY ALL
)
SELECT minute, service, operation, status, bucket, {sign} * spans FROM g
UNION ALL
SELECT minute, service, operation, '{DURATION_STATUS}', bucket, {sign} * duration_sum FROM g"""


def pair_deltas(
    pairs: str, sign: int, bucket: str, *, synthetic: bool = True, retries: bool = True
) -> list[str]:
    """Statements counting the pairs in the table ``pairs`` into these tables;
    ``synthetic`` False: no pair is marked synthetic, so none counts apart; ``retries``
    False: no pair is marked a retry."""
    statements = []
    if retries:
        statements.append(
            f"""
INSERT INTO {ROLLUP_RETRIES} (minute, caller, callee, retried)
SELECT minute, caller, callee, {sign} * count(*) FROM {pairs}
WHERE retried GROUP BY ALL"""
        )
    if synthetic:
        statements.append(
            f"""
INSERT INTO {ROLLUP_SYNTHETIC_EDGES} (minute, caller, callee, bucket, calls, errors)
SELECT minute, caller, callee, {bucket}, {sign} * count(*),
       {sign} * count(*) FILTER (WHERE status = '{ERROR}')
FROM {pairs} WHERE synthetic GROUP BY ALL"""
        )
    return statements


def forget_minutes_before(run: Run, cutoff_minute: int) -> None:
    for table in KEYS:
        run(f"DELETE FROM {table} WHERE minute < ?", [cutoff_minute])

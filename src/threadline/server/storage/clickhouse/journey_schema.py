"""The ClickHouse journey steps table (schema version 2) and the view that keeps it.

A *step* is a trace's entry operation: its root's service and operation.
``journey_steps`` holds one row per trace (and, until merged, one per insert block
of the trace): the smallest session id of its spans, first start, last end, last
start, its root candidate, whether it failed, whether it is synthetic, the services
with an error span and every service it touched. No user id: maps and funnels are
counts.

Why an ``AggregatingMergeTree`` keyed by trace id, of ``SimpleAggregateFunction``
columns. Spans of a trace arrive in several inserts, late and out of order; each
insert block adds a partial row per trace (``journey_steps_mv``, fed from
``spans``) and every column folds: ``min``/``max`` for times, session and flags,
``min`` of the tuple (has a parent, start, span id, service, operation) for the
root (the same rule as the DuckDB summaries': the span without a parent, else the
earliest), unions of arrays for the service sets. Reads group by trace id, so they
never depend on a merge having happened; merges only shrink the table. The key is
the trace alone, not (session, trace): a trace's session is the smallest of its
spans' session ids, which a late span can change, and a key column cannot. Every
aggregate is idempotent (no sums), so a block seen twice changes nothing.

``SimpleAggregateFunction`` columns hold plain values, so the start has a ``minmax``
skip index and the table is partitioned by the day of its start like ``spans`` (a
trace whose rows fall on two days keeps two rows; reads merge them all the same),
which lets the span TTL's day drops apply to it too. On a cluster it is sharded by
trace id like the spans it is fed from, so each shard's view sees whole traces.

Transitions (next step, think time, ended-here) are not stored: a transition joins
two traces of a session, which arrive in any order, so they are paired at read
time over this narrow table (``journey_reads``).
"""

from __future__ import annotations

from typing import Final

from threadline.conventions import JOURNEY_SYNTHETIC, SYNTHETIC_TRUE
from threadline.server.analysis.attribute_signal import PER_PERSON_KEYS
from threadline.server.journey_model import STEP_ATTRIBUTES, STEP_VALUE_CHARS
from threadline.server.storage.clickhouse.sql import ERROR, USER_TRAFFIC

TABLE: Final = "journey_steps"
VIEW: Final = "journey_steps_mv"

# A span marked synthetic: the map value is the attribute's JSON text, a string
# ("true") or a boolean (true), as the DuckDB store's ``json_extract_string`` reads.
_SYNTHETIC: Final = (
    f"s.attributes['{JOURNEY_SYNTHETIC}'] IN ('\"{SYNTHETIC_TRUE}\"', '{SYNTHETIC_TRUE}')"
)


# The span columns a step row is made of (``end_ns`` is an alias: ``*`` leaves it out).
SPAN_COLUMNS: Final = (
    "trace_id, span_id, parent_span_id, service_name, name, start_ns, end_ns, status,"
    " session_id, attributes"
)


# The entry span's kept attributes as sorted ``key␟value`` strings, by the DuckDB
# store's rule (``duckdb/journey_steps.entry_attributes``): no identity keys, no
# JSON null, object or array, no value longer than ``STEP_VALUE_CHARS``, at most
# ``STEP_ATTRIBUTES``. Map values are JSON text: a string (and only a string) starts
# with a quote and is read as its text; anything else is its JSON text.
_VALUE: Final = "if(startsWith(v, '\"'), JSONExtractString(v), v)"
_KEPT: Final = (
    f"NOT has([{', '.join(repr(k) for k in sorted(PER_PERSON_KEYS))}], k) AND v != 'null'"
    " AND NOT startsWith(v, '{') AND NOT startsWith(v, '[')"
    f" AND lengthUTF8({_VALUE}) <= {STEP_VALUE_CHARS}"
)
ENTRY_ATTRIBUTES: Final = (
    f"arraySlice(arraySort(arrayFilter(p -> p != '', arrayMap((k, v) -> if({_KEPT},"
    f" concat(k, char(31), {_VALUE}), ''), mapKeys(s.attributes), mapValues(s.attributes)))),"
    f" 1, {STEP_ATTRIBUTES})"
)

# A root candidate that loses to any real one (it has a parent and starts last):
# the rows ``journey_origins`` adds carry only a trace's error origin.
NO_ROOT: Final = "(1, 9223372036854775807, '', '', '', [])"


def step_rows(source: str) -> str:
    """One partial step row per trace of the spans in ``source`` (a table or a
    parenthesised select of ``SPAN_COLUMNS``)."""
    # Arguments name the source's columns (``s.``): an output named as a column
    # (``min(start_ns) AS start_ns``) would otherwise be read inside other aggregates.
    return f"""SELECT s.trace_id AS trace_id,
       min(nullIf(s.session_id, '')) AS session_id,
       min(s.start_ns) AS start_ns,
       max(s.end_ns) AS end_ns,
       max(s.start_ns) AS last_start_ns,
       min(tuple(toUInt8(coalesce(s.parent_span_id, '') != ''), s.start_ns, s.span_id,
                 toString(s.service_name), toString(s.name),
                 {ENTRY_ATTRIBUTES})) AS root,
       max(toUInt8(s.status = '{ERROR}')) AS failed,
       max(toUInt8({_SYNTHETIC})) AS synthetic,
       groupUniqArrayIf(toString(s.service_name), s.status = '{ERROR}') AS error_services,
       groupUniqArray(toString(s.service_name)) AS services,
       CAST(NULL, 'Nullable(String)') AS error_origin
FROM {source} AS s
WHERE s.{USER_TRAFFIC} AND s.trace_id != ''
GROUP BY s.trace_id"""


def statements(db: str, *, spans: str, ttl: str, settings: str) -> list[str]:
    """The table and its view in the database ``db`` (quoted), fed from its table
    ``spans``; ``ttl`` is the span TTL clause (or empty), ``settings`` the span
    table's durability settings."""
    start = "fromUnixTimestamp64Nano(start_ns)"
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.{TABLE} (
    trace_id String CODEC(ZSTD(1)),
    session_id SimpleAggregateFunction(min, Nullable(String)) CODEC(ZSTD(1)),
    start_ns SimpleAggregateFunction(min, Int64) CODEC(ZSTD(1)),
    end_ns SimpleAggregateFunction(max, Int64) CODEC(ZSTD(1)),
    last_start_ns SimpleAggregateFunction(max, Int64) CODEC(ZSTD(1)),
    root SimpleAggregateFunction(min,
        Tuple(UInt8, Int64, String, String, String, Array(String))) CODEC(ZSTD(1)),
    failed SimpleAggregateFunction(max, UInt8),
    synthetic SimpleAggregateFunction(max, UInt8),
    error_services SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)) CODEC(ZSTD(1)),
    error_origin SimpleAggregateFunction(max, Nullable(String)) CODEC(ZSTD(1)),
    INDEX idx_start start_ns TYPE minmax GRANULARITY 1
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate({start})
ORDER BY trace_id
{ttl}SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, {settings}""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{VIEW} TO {db}.{TABLE} AS
{step_rows(f"{db}.{spans}")}""",
    ]

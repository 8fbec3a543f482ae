"""Re-sent spans: the part of an incoming batch that is not stored yet, each span once.

Exporters retry a request whose answer they did not see, so the same spans arrive
again. A span whose ``(trace_id, span_id, start_ns)`` is stored already, or repeats
within the batch, is neither stored nor counted. The join carries ``start_ns`` (a
re-sent span repeats it exactly) so DuckDB prunes the span table to the batch's time
range with its zone maps instead of reading every trace id.

A batch holding a span whose start ingest moved back from the future (it starts when
it was received, so a re-sent copy starts later than the stored one) is matched by
the two ids alone, over ``CLAMPED_RESEND_HORIZON_NS`` before its latest start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.batch import COLUMNS
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import Row

Run = Callable[[str, Sequence[object]], list[Row]]

FRESH: Final = "threadline_fresh"
DEDUPE_KEY: Final[tuple[str, ...]] = ("trace_id", "span_id", "start_ns")
# How long before a batch's latest start a stored copy of one of its moved-back spans
# is looked for: exporters stop retrying well within an hour.
CLAMPED_RESEND_HORIZON_NS: Final = 3_600_000_000_000
_COLUMN_LIST: Final = ", ".join(COLUMNS)


def unseen(run: Run, incoming: str, start_bounds: tuple[int, int], *, clamped: bool) -> str:
    """The table to store and count from: ``incoming`` itself when nothing repeats (the
    usual case: no copy is made), else ``FRESH``, which ``release`` drops afterwards."""
    low, high = start_bounds
    key, seen_from = DEDUPE_KEY, low
    if clamped:
        key, seen_from = DEDUPE_KEY[:2], min(low, high - CLAMPED_RESEND_HORIZON_NS)
    seen, repeats = run(_already(incoming, key), [seen_from, high])[0]
    if not (seen or repeats):
        return incoming
    run(_dedupe(incoming, key), [seen_from, high])
    return FRESH


def release(run: Run, table: str) -> None:
    """Drop the copy ``unseen`` made, if it made one."""
    if table == FRESH:
        run(f"DROP TABLE {FRESH}", [])


def _already(incoming: str, key: Sequence[str]) -> str:
    """How many of the batch's spans are stored already, and how many repeat within it."""
    return f"""
SELECT (SELECT count(*) FROM {incoming} AS i
        SEMI JOIN (SELECT {", ".join(key)} FROM {TABLE} WHERE start_ns BETWEEN ? AND ?) AS s
        ON {_same(key)}),
       (SELECT count(*) - count(DISTINCT ({", ".join(key)})) FROM {incoming})"""


def _dedupe(incoming: str, key: Sequence[str]) -> str:
    return f"""
CREATE OR REPLACE TEMP TABLE {FRESH} AS
SELECT {_COLUMN_LIST} FROM {incoming} AS i
ANTI JOIN (SELECT {", ".join(key)} FROM {TABLE} WHERE start_ns BETWEEN ? AND ?) AS s
  ON {_same(key)}
QUALIFY row_number() OVER (PARTITION BY {", ".join(f"i.{c}" for c in key)}) = 1"""


def _same(key: Sequence[str]) -> str:
    return " AND ".join(f"i.{c} = s.{c}" for c in key)

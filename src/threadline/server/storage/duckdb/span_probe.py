"""A search page with conditions on spans, found by checking traces in the page's order.

An attribute pair (or a journey id) is on spans only, so a search for it read the
attribute column of every span in the window before a page could be cut: at 10M spans
most of the search's time, for a page of 20 traces. Search engines answer such a
top-N by walking the order and checking each candidate, stopping once the page is
full; here the candidates are the summaries' next traces in the page's order (cheap:
one row per trace), and a check reads only the spans of those traces: in start order
where their summaries say they start (the candidates lie together, so zone maps skip
the rest of the window); in duration order, where they lie all over the window, through
the span table's trace-id index.

The usual search (a value that goes with the order, like a slow provider among the
slowest traces) fills its page from the first probe. A value most candidates lack
would need many probes: after the first, the share of candidates carrying it says how
many more to check, and when that passes a bound (``MOST_TOGETHER``, ``MOST_SPREAD``),
or a probe finds none, the caller reads the window once instead, as before, having
spent a probe more. Figures: ``docs/performance.md``, ADR 6.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from threadline.server.analysis import time_slices
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    INDEX_LOOKUP_ROWS,
    Conditions,
    Fetch,
    Row,
    looked_up,
    starts_in,
)

# Candidates checked, first and at most in all before the window is read once instead,
# by how their spans lie. In start order the candidates' spans lie together (a few row
# groups however many traces), so many are checked at little cost; in duration order
# they lie all over the window, and past a few hundred traces a probe reads most of its
# row groups anyway. The first probe of those is the page (20 by default) with room for
# some that lack the value.
FIRST_TOGETHER: Final = 256
MOST_TOGETHER: Final = 4096
FIRST_SPREAD: Final = 32
MOST_SPREAD: Final = 512
# Deepest page (limit and offset) found by probing; a deeper one reads the window.
MOST_WANTED: Final = 128
# Probes at most (the estimate after the first may still fall short).
MOST_PROBES: Final = 3
# More candidates than the share found so far says are needed, for its error.
_MARGIN: Final = 1.5

# The page's next candidates in order, ``(limit, after)``: up to ``limit`` rows after the
# row ``after`` (from the first when ``None``), each as the search returns it, then how
# many spans the trace has and where they start (first and last start). Each probe goes
# on after the last row the one before checked, so a fold in between neither repeats nor
# skips a trace.
Candidates = Callable[[int, Row | None], Sequence[Row]]


def first_matching(
    fetch: Fetch,
    candidates: Candidates,
    on_spans: Sequence[Conditions],
    wanted: int,
    *,
    together: bool,
) -> list[Row] | None:
    """The first ``wanted`` candidate rows (fewer when the candidates run out) whose
    traces have a span meeting each condition of ``on_spans`` (each on a span of its
    own), in the candidates' order, without the three columns that place their spans;
    ``None`` when probing would cost more than reading the window (see the module
    docstring). ``together``: the candidates come in start order, so their spans lie
    together."""
    if wanted > MOST_WANTED:
        return None
    found: list[Row] = []
    first, most = (FIRST_TOGETHER, MOST_TOGETHER) if together else (FIRST_SPREAD, MOST_SPREAD)
    checked, take, last = 0, max(first, wanted), None
    for _ in range(MOST_PROBES):
        rows = candidates(take, last)
        matching = _matching(fetch, rows, on_spans, together=together)
        found.extend(row[:-3] for row in rows if row[0] in matching)
        checked += len(rows)
        if len(found) >= wanted or len(rows) < take:
            return found[:wanted]
        if not found:
            return None
        take = math.ceil((wanted - len(found)) * checked / len(found) * _MARGIN)
        if checked + take > most:
            return None
        last = rows[-1]
    return None


def _matching(
    fetch: Fetch, rows: Sequence[Row], on_spans: Sequence[Conditions], *, together: bool
) -> set[str]:
    """The traces of ``rows`` with a span meeting each condition (``together``: the rows
    come in start order)."""
    if not rows:
        return set()
    where = _spans_of(rows, together=together)
    each = " AND ".join(f"bool_or({' AND '.join(span.fragments)})" for span in on_spans)
    found = fetch(
        f"SELECT trace_id FROM {TABLE}{where.sql('WHERE')} GROUP BY trace_id HAVING {each}",
        [*where.params, *(param for span in on_spans for param in span.params)],
    )
    return {str(row[0]) for row in found}


def _spans_of(rows: Sequence[Row], *, together: bool) -> Conditions:
    """The spans of the traces of ``rows`` (each ending with its span count, first and
    last start): looked up by trace id when spread over the window and holding at most
    ``INDEX_LOOKUP_ROWS`` spans (``sql.looked_up``), else read where they start. The
    slowest traces are the longest, so their start ranges are the widest and hold many
    times the rows of their own spans; candidates in start order lie together."""
    ids = [str(row[0]) for row in rows]
    if not together and sum(int(row[-3]) for row in rows) <= INDEX_LOOKUP_ROWS:
        return looked_up("trace_id", ids)
    where = starts_in(time_slices.covering((int(row[-2]), int(row[-1])) for row in rows))
    where.add("trace_id IN (SELECT unnest(?::VARCHAR[]))", ids)
    return where

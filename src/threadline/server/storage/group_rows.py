"""What trace groups hold, built from count rows: the same Python for every store.

Each store counts the sampled traces' operations and attribute values with its own
SQL; the rows come here in one column order, so DuckDB and ClickHouse build the same
``OperationPresence`` and ``AttributeCount`` values from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from threadline.server.aggregates import AttributeCount, OperationPresence


def operations_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[OperationPresence, ...]:
    """Rows (service, operation, focus traces, baseline traces, focus self ns,
    baseline self ns, focus origins, baseline origins, focus self ns², baseline self ns²)."""
    return tuple(
        OperationPresence(
            service=row[0],
            operation=row[1],
            focus_traces=int(row[2]),
            baseline_traces=int(row[3]),
            focus_self_ns=int(row[4]),
            baseline_self_ns=int(row[5]),
            focus_error_traces=int(row[6]),
            baseline_error_traces=int(row[7]),
            focus_self_squares=float(row[8]),
            baseline_self_squares=float(row[9]),
        )
        for row in rows
    )


def attributes_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[AttributeCount, ...]:
    """Rows (key, value, focus traces, baseline traces, values of the key, traces of
    the key)."""
    return tuple(
        AttributeCount(row[0], row[1], *(int(value) for value in row[2:6])) for row in rows
    )

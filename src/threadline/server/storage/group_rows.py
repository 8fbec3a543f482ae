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
            row[0],
            row[1],
            *(int(value) for value in row[2:8]),
            float(row[8]),
            float(row[9]),
        )
        for row in rows
    )


def attributes_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[AttributeCount, ...]:
    """Rows (key, value, focus traces, baseline traces, values of the key, traces of
    the key)."""
    return tuple(
        AttributeCount(row[0], row[1], *(int(value) for value in row[2:6])) for row in rows
    )

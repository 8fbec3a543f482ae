"""The statements a DuckDB store runs, recorded for tests that look at how it reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

from threadline.server.storage.duckdb import store as store_module

Statement = tuple[str, Sequence[object]]


@contextmanager
def statements() -> Iterator[list[Statement]]:
    """The SQL of every statement DuckDB stores run meanwhile, with its parameters."""
    ran: list[Statement] = []
    rows_of = store_module._all_rows

    def recorded(cursor: Any, sql: str, params: Sequence[object], doing: str) -> list[Any]:
        ran.append((sql, params))
        return rows_of(cursor, sql, params, doing)

    with patch.object(store_module, "_all_rows", recorded):
        yield ran

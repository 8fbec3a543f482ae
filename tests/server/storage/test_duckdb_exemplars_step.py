"""Schema version 8's step makes the exemplar table exactly as new files have it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from threadline.server.storage.duckdb.migrations import STEPS
from threadline.server.storage.duckdb.schema import EXEMPLARS_DDL, ROLLUP_EXEMPLARS


def columns(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str, bool]]:
    return [
        (str(name), str(kind), bool(nullable))
        for name, kind, nullable in connection.execute(
            "SELECT column_name, data_type, is_nullable FROM duckdb_columns()"
            " WHERE table_name = ? ORDER BY column_index",
            [ROLLUP_EXEMPLARS],
        ).fetchall()
    ]


def test_the_step_and_the_new_file_schema_agree(tmp_path: Path) -> None:
    """Same columns, types and nullability from the step as from create_statements."""
    (step,) = [step for step in STEPS if step.version == 8]
    with duckdb.connect(str(tmp_path / "step.duckdb")) as stepped:
        step.apply(stepped)
        from_step = columns(stepped)
    with duckdb.connect(str(tmp_path / "new.duckdb")) as new:
        new.execute(EXEMPLARS_DDL)
        from_ddl = columns(new)
    assert from_step == from_ddl
    assert [c[0] for c in from_step] == [
        "minute", "service", "operation", "slot", "trace_id", "duration_ns", "start_ns",
    ]  # fmt: skip

"""Funnel definitions from ``[[funnel]]`` tables: read whole, refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.server.analysis.funnel import StepMatch
from threadline.server.funnel_defs import FunnelError, load_toml, open_funnels
from threadline.server.storage.duckdb import DuckDBStore


def test_funnel_tables_are_read_from_threadline_toml(tmp_path: Path) -> None:
    """Steps are operations or {service, operation} tables, in order."""
    config = tmp_path / "threadline.toml"
    config.write_text(
        '[[funnel]]\nname = "checkout"\n'
        'steps = ["POST /cart", {service = "web", operation = "POST /pay"}]\n'
    )
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        funnels = open_funnels(store, tmp_path / "spans.duckdb", {"THREADLINE_CONFIG": str(config)})
        found = funnels.get().value.get("checkout")
    finally:
        store.close()
    assert found is not None
    assert found.steps == (StepMatch("POST /cart"), StepMatch("POST /pay", "web"))


def test_a_bad_funnel_table_names_the_field(tmp_path: Path) -> None:
    """A one-step funnel is refused with the table and field named."""
    config = tmp_path / "threadline.toml"
    config.write_text('[[funnel]]\nname = "x"\nsteps = ["GET /"]\n')
    with pytest.raises(FunnelError, match=r"\[\[funnel\]\] funnel\[0\]\.steps"):
        load_toml(config)

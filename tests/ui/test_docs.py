"""docs/ui.md describes every page the UI serves."""

from __future__ import annotations

import re
from pathlib import Path

from threadline.server.query import QueryService
from threadline.server.storage.duckdb import DuckDBStore
from threadline.server.ui import build_ui_router

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ui.md"


def test_every_page_is_documented(tmp_path: Path) -> None:
    """Each page route appears in docs/ui.md, so a new page cannot ship undocumented."""
    text = DOCS.read_text(encoding="utf-8")
    store = DuckDBStore(tmp_path / "spans.duckdb")
    try:
        routes = build_ui_router(QueryService(store)).routes
    finally:
        store.close()
    pages = [
        route.path  # type: ignore[attr-defined]
        for route in routes
        if not route.path.startswith("/static")  # type: ignore[attr-defined]
    ]
    assert len(pages) >= 8
    for path in pages:
        shown = re.sub(r"\{(\w+)(:path)?\}", r"{\1}", path)
        assert f"`{shown}" in text, f"{shown} is not described in docs/ui.md"

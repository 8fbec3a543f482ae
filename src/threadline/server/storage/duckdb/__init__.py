"""The embedded span store: one DuckDB file, group-committed writes."""

from threadline.server.storage.duckdb.store import DuckDBStore

__all__ = ["DuckDBStore"]

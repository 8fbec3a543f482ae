"""What each codec choice of the ClickHouse schema saves, measured on the bench workload.

    cd bench && PYTHONPATH=../src python3 chdb_codecs.py                  # 200,000 spans
    cd bench && PYTHONPATH=../src python3 chdb_codecs.py --spans 1000000

Loads the analysis shop (``analysis_workload.py``, as ``store_size.py`` does) into a
ClickHouse store on chDB and merges every part (``compact``). Then, for each choice,
copies a table into a variant that makes the other choice (the same rows, merged the
same way) and prints the variant's bytes on disk against the table's, per span: a
positive difference is what the schema's choice saves. The choices of schema
version 4 (``storage/clickhouse/versions.py``) come first, then codecs tried and not
taken. Bounded: one load of ``--spans`` spans, one copy per row.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Final

# Run as a script, so this directory is on sys.path and the workload module imports.
from store_size import batches, load
from threadline.server.storage.clickhouse.store import ClickHouseStore
from threadline.store_url import StoreUrl

Z1: Final = "CODEC(ZSTD(1))"
# (what is compared, table, [(as the schema has it, as the variant has it)]): the
# variant's text replaces the schema's in the table's CREATE statement.
VARIANTS: Final[tuple[tuple[str, str, list[tuple[str, str]]], ...]] = (
    (
        "resource values LowCardinality, against String",
        "spans",
        [("Map(LowCardinality(String), LowCardinality(String))",
          "Map(LowCardinality(String), String)")],
    ),
    ("durations T64 before ZSTD, against ZSTD", "spans",
     [("`length_ns` Int64 CODEC(T64, ZSTD(1))", "`length_ns` Int64 CODEC(ZSTD(1))")]),
    ("session and user ids ZSTD(3), against ZSTD(1)", "spans",
     [("`session_id` Nullable(String) CODEC(ZSTD(3))", "`session_id` Nullable(String) " + Z1),
      ("`user_id` Nullable(String) CODEC(ZSTD(3))", "`user_id` Nullable(String) " + Z1)]),
    ("trace rollup values ZSTD, against the default", "trace_rollup",
     [(" " + Z1, ""), ("`trace_id` String,", "`trace_id` String " + Z1 + ",")]),
    ("rollup operations ZSTD, against the default", "rollup_operations", [(" " + Z1, "")]),
    ("request rollup ZSTD, against the default", "request_rollup", [(" " + Z1, "")]),
    ("rollup edges ZSTD, against the default", "rollup_edges", [(" " + Z1, "")]),
    ("pair rollup ZSTD, against the default", "pair_rollup", [(" " + Z1, "")]),
    ("rollup exemplars ZSTD, against the default", "rollup_exemplars", [(" " + Z1, "")]),
    ("not taken: trace ids ZSTD(1), against ZSTD(3)", "spans",
     [("`trace_id` String " + Z1, "`trace_id` String CODEC(ZSTD(3))")]),
    ("not taken: start Delta, against DoubleDelta", "spans",
     [("CODEC(Delta(8), ZSTD(1))", "CODEC(DoubleDelta, ZSTD(1))")]),
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    args = parser.parse_args()
    data = batches(args.spans)
    spans = sum(len(b) for b in data)
    with tempfile.TemporaryDirectory(prefix="threadline-codecs-") as scratch:
        store = ClickHouseStore(StoreUrl(backend="chdb", path=Path(scratch) / "chdb"))
        try:
            load(store, data)
            store.compact()
            database = store._connection.database

            def on_disk(table: str) -> int:
                rows = store._fetch(
                    "SELECT sum(bytes_on_disk) FROM system.parts WHERE active"
                    " AND database = {db:String} AND table = {t:String}",
                    {"db": database, "t": table},
                )
                return int(rows[0][0] or 0)

            print(f"{spans:,} spans, parts merged; B/span of the schema's table → the variant")
            for number, (what, table, changes) in enumerate(VARIANTS):
                create = store._fetch(
                    "SELECT create_table_query FROM system.tables"
                    " WHERE database = {db:String} AND name = {t:String}",
                    {"db": database, "t": table},
                )[0][0]
                variant = f"{table}_variant_{number}"
                statement = create.replace(f"{database}.{table} ", f"{database}.{variant} ", 1)
                for schema_text, variant_text in changes:
                    if schema_text not in statement:
                        raise SystemExit(f"{table} no longer holds {schema_text!r}")
                    statement = statement.replace(schema_text, variant_text)
                store._command(statement, {})
                copy = f"INSERT INTO {database}.{variant} SELECT * FROM {database}.{table}"
                store._command(copy, {})
                store._command(f"OPTIMIZE TABLE {database}.{variant} FINAL", {})
                kept, other = on_disk(table) / spans, on_disk(variant) / spans
                print(f"  {what:52} {kept:6.2f} → {other:6.2f}  ({other - kept:+.2f})")
                store._command(f"DROP TABLE {database}.{variant}", {})
        finally:
            store.close()


if __name__ == "__main__":
    main()

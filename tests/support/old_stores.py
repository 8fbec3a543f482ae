"""Store files written by earlier schema versions, and the spans each one holds.

``tests/server/storage/schema_versions/v<N>.duckdb.gz`` is a DuckDB file made by the
Threadline release whose schema was version N, holding ``fixture_spans()``. It is
gzipped because an almost empty DuckDB file is mostly zeroed blocks. A migration
test unpacks one, opens it with today's code and checks that nothing was lost.

To add ``v<N>`` (before changing the schema to N + 1): with ``PYTHONPATH`` set to
this checkout's ``src`` and ``tests``, run ``python3 -m support.old_stores <N>``;
it writes the file from the code checked out, so run it *before* the change.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Final

from threadline.server.model import SpanEvent, SpanKind, SpanLink, SpanRecord, StatusCode

SCHEMA_VERSIONS: Final = Path(__file__).resolve().parents[1] / "server/storage/schema_versions"
# 2026-01-01T00:00:00Z: fixed, so the files and the expected spans never change.
EPOCH_NS: Final = 1_767_225_600_000_000_000
TRACES: Final = 30
SERVICES: Final = ("gateway", "checkout", "payments", "inventory")


def trace_id(n: int) -> str:
    return f"{n + 1:032x}"


def fixture_spans() -> list[SpanRecord]:
    """The spans every fixture file holds: 30 traces of 4 spans, each field exercised."""
    spans: list[SpanRecord] = []
    for n in range(TRACES):
        start = EPOCH_NS + n * 1_000_000_000
        failed = n % 7 == 3
        for depth, service in enumerate(SERVICES):
            event = SpanEvent("cache miss", start + 5, {"key": f"k{n}"})
            link = SpanLink(trace_id((n + 1) % TRACES), f"{n:016x}")
            spans.append(
                SpanRecord(
                    trace_id=trace_id(n),
                    span_id=f"{n:08x}{depth:08x}",
                    parent_span_id=None if depth == 0 else f"{n:08x}{depth - 1:08x}",
                    service_name=service,
                    name=f"{service} step {depth}",
                    kind=SpanKind.SERVER if depth == 0 else SpanKind.CLIENT,
                    start_ns=start + depth * 1_000_000,
                    end_ns=start + (40 - depth) * 1_000_000 + n * 10_000,
                    status=StatusCode.ERROR if failed and depth == 3 else StatusCode.UNSET,
                    status_message="card declined" if failed and depth == 3 else "",
                    session_id=f"session-{n % 6}",
                    user_id=f"user-{n % 4}" if n % 5 else None,
                    journey_id="synthetic-1" if n == 0 else None,
                    attributes={"http.route": f"/{service}", "retry": n % 3, "ok": not failed},
                    resource={"service.name": service, "host.name": f"host-{depth}"},
                    events=(event,) if depth == 1 else (),
                    links=(link,) if depth == 2 else (),
                    scope_name="fixture",
                )
            )
    return spans


def unpack(version: int, directory: Path) -> Path:
    """A writable copy of the version-``version`` file in ``directory``."""
    target = directory / f"v{version}.duckdb"
    with (
        gzip.open(SCHEMA_VERSIONS / f"v{version}.duckdb.gz", "rb") as packed,
        target.open("wb") as unpacked,
    ):
        shutil.copyfileobj(packed, unpacked)
    return target


def make(version: int) -> Path:
    """Write ``v<version>.duckdb.gz`` with the store code importable right now."""
    import duckdb

    from threadline.server.batch import SpanBatch
    from threadline.server.storage.duckdb import DuckDBStore
    from threadline.server.storage.duckdb.migrations import stored_version

    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch) / "spans.duckdb"
        store = DuckDBStore(db)
        try:
            store.write(SpanBatch.from_records(fixture_spans())).result(timeout=60)
        finally:
            store.close()
        with duckdb.connect(str(db)) as connection:
            written = stored_version(connection)
        if written != version:
            raise SystemExit(f"the code checked out writes schema version {written}, not {version}")
        target = SCHEMA_VERSIONS / f"v{version}.duckdb.gz"
        with db.open("rb") as plain, gzip.open(target, "wb", compresslevel=9) as packed:
            shutil.copyfileobj(plain, packed)
    return target


if __name__ == "__main__":
    print(make(int(sys.argv[1])))

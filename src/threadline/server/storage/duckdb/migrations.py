"""Schema versions of the DuckDB file, and the steps that upgrade an older file in place.

The module is long (past 500 lines) because it is the one ledger of versions: each
step is listed here, in order, beside the opening logic that runs them and ``STEPS``
(each step's work is a short function calling the module that owns the tables), so a
reader sees every upgrade in one place and adding a version is one change here.

Where the version lives. DuckDB has no ``PRAGMA user_version`` (SQLite's answer) and
no other user-writable header field, so the version is a table, ``threadline_schema``,
with one row per version the file has been at: ``version``, when it was applied and
by which Threadline release. A table has what matters most here: it is written in
the same transaction as the step that changes the schema, so the version and the
schema are committed together or not at all. A file killed mid-step reopens at the
old version with the old schema, and the step runs again. The rows double as the
file's upgrade history for whoever investigates it.

Versions (``LATEST`` is the last):

1. The ``spans`` table and its indexes. Every file made before versions were
   recorded (it has ``spans`` but no ``threadline_schema``) is version 1.
2. ``threadline_schema`` itself, with a row for version 1 (when unknown) and one for 2.
3. The rollup tables (``rollup_operations``, ``rollup_edges``, ``rollup_names``,
   ``rollup_services``; see ``rollups``), filled from the spans already stored.
4. ``trace_summaries`` (one row per trace; see ``summaries``), filled from the
   spans already stored.
5. The hotspot and propagation rollups (``rollup_roots``, ``rollup_entries``,
   ``rollup_orphans``, ``rollup_orphan_spans``, ``rollup_hops``; see
   ``health_rollups``), filled from the spans already stored.
6. ``rollup_sdk_stats``, the SDK's reports per minute × service × process (see
   ``sdk_rollup``), filled from the stats spans already stored.
7. What SLOs read besides the rollups (``rollup_retries``, ``rollup_synthetic``,
   ``rollup_synthetic_edges``; see ``slo_rollups``), filled from the spans already
   stored, and ``alert_states``, the alerts' state (empty).
8. ``rollup_exemplars``: one example trace per minute × service × operation ×
   ``/metrics`` latency slot, kept from then on (empty after the upgrade).
9. ``journey_steps`` (a trace's entry step, per trace of a session) and
   ``journey_synthetic`` (traces marked synthetic; see ``journey_steps``),
   filled from the trace summaries and the spans already stored.
10. ``logs``, the OTLP log records (see ``logs``), and its indexes (empty after the
    upgrade).
11. ``drill_results``, the scheduled drills' results (see ``drill_results``; empty
    after the upgrade).
12. ``documents``, the documents people edit (see ``documents``; empty after the
    upgrade: the server imports the old ``<db>.*.json`` files at its next start).
13. ``journey_steps.attributes`` and ``error_origin``: the entry span's attributes of
    each step and the service its error started in (see ``journey_steps``), filled
    from the spans and the trace summaries already stored.
14. ``journey_session_touches``, ``journey_session_failures`` and
    ``journey_slo_minutes``: each session's latest touching and failed minutes and the
    sessions counted per minute of them, what journey SLOs read (see
    ``journey_sessions``), filled from the journey steps; and an index of
    ``journey_steps`` on ``session_id``.
15. ``journey_steps.next_service``, ``next_operation`` and ``next_start``: each step's
    next step in its session, what journey maps read (see ``journey_links``), linked
    from the stored steps by version 22's step.
16. ``rollup_message_spans``: each PRODUCER and CONSUMER span's message id, read out
    of its attributes once, what the message-hop lookup joins (see
    ``health_rollups``), filled from the spans already stored.
17. ``journey_summaries``: one row per session over its folded traces, what journey
    lists read (see ``journey_summaries``), counted from the folded trace summaries.
18. The span table's indexes on ``session_id`` and ``user_id`` dropped: sessions and
    users are found in the trace summaries, and the indexes cost every commit.
19. ``failed_trace_spans``: every span of each trace with an error span, what error
    hotspots read (see ``kept_apart``), copied from the spans of the folded traces.
20. ``failed_trace_spans`` also holds a fixed share of all traces by hash, what the
    baseline of error hotspots is drawn from (see ``kept_apart``), copied likewise.
21. ``trace_summaries.duration_ns``: a folded row's duration, what searches by duration
    filter and sort on (see ``summaries``), set from each folded row's times.
22. ``journey_steps.prev_step_start`` and ``prev_move_start``: where each step's same
    step and same move came before in its session, what journey maps count journeys
    by (see ``journey_links``), linked (with the next steps) from the stored steps.
23. ``slow_trace_spans``: every span of each trace whose root request is in its
    operation's tail, what tail causes read (see ``kept_apart``), copied from the
    spans of the summarised traces by the last hour's rollups.
24. ``resource_keys``: the top-level keys some stored span's resource carries, what
    a store reads at open to know which searches may find a pair on a resource (see
    ``resource_keys``), filled from the spans' distinct resource documents.
25. ``trace_request_paths``: each operation's own time on the root request's critical
    path of the copied traces of a hash share, what tail causes by the critical path
    read instead of walking those traces (see ``kept_paths``), walked from the copies
    already kept.

Opening a file (``open_schema``):

- no tables at all: a new file, given the newest schema (``schema.create_statements``)
  and the row for ``LATEST``, in one transaction;
- an older version: each later step runs in order, each in its own transaction
  together with its version row, and is logged;
- a newer version than this release knows: refused with ``StoreError`` naming both
  versions; the file is not touched.

Adding a step (the whole change, here):

1. Before changing anything, keep a file of the current version as a test fixture:
   ``PYTHONPATH=src:tests python3 -m support.old_stores <current version>``.
2. Write the step and list it::

       def _add_span_links(connection: Connection) -> None:
           \"\"\"Version 4: links in a table of their own, filled from the spans.\"\"\"
           connection.execute("CREATE TABLE span_links (...)")
           connection.execute("INSERT INTO span_links SELECT ... FROM spans")

       STEPS = (..., Step(3, _add_rollups), Step(4, _add_span_links))

3. Put the same objects in ``schema.create_statements`` so new files get them.
4. Add the version to the list above and to the table in docs/operating.md. The tests
   in tests/server/storage/test_duckdb_migrations.py pick up the step and its fixture.

A step runs inside the transaction ``open_schema`` opens: it never commits, and an
exception rolls the whole step back. It spells out its own DDL instead of calling
``create_statements`` (which describes the newest schema and will move on), so it
does the same thing on every file for ever. After the steps, ``create_statements``
runs too: its statements are idempotent, so it changes nothing on an up-to-date file.
See docs/adr/0004-schema-versions.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

import duckdb

from threadline.server.storage.base import StoreError
from threadline.server.storage.duckdb import (
    backfill,
    health_rollups,
    journey_links,
    journey_sessions,
    journey_steps,
    journey_summaries,
    kept_apart,
    kept_paths,
    resource_keys,
    rollups,
    sdk_rollup,
    summaries,
)
from threadline.server.storage.duckdb.schema import (
    JOURNEY_SUMMARIES_DDL,
    REQUEST_PATHS_DDL,
    TABLE,
    VERSION_TABLE,
    create_statements,
)
from threadline.server.storage.duckdb.sql import fetcher

log = logging.getLogger(__name__)

Connection = duckdb.DuckDBPyConnection


@dataclass(frozen=True, slots=True)
class Step:
    """``apply`` takes a file from version ``version - 1`` to ``version``."""

    version: int
    apply: Callable[[Connection], None]


def _record_versions(connection: Connection) -> None:
    """Version 2: the version table, saying the file was at version 1 (time unknown)."""
    connection.execute(
        f"CREATE TABLE {VERSION_TABLE} ("
        " version INTEGER PRIMARY KEY, applied_ns BIGINT, applied_by VARCHAR NOT NULL)"
    )
    connection.execute(f"INSERT INTO {VERSION_TABLE} VALUES (1, NULL, 'unknown')")


# Version 3's tables as they were made then (``schema.rollup_statements`` is the newest).
_ROLLUP_TABLES_V3: Final[tuple[str, ...]] = (
    """CREATE TABLE rollup_operations (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status VARCHAR NOT NULL, bucket INTEGER NOT NULL, spans BIGINT NOT NULL,
    duration_sum BIGINT NOT NULL, fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_edges (
    minute BIGINT NOT NULL, caller VARCHAR NOT NULL, caller_operation VARCHAR NOT NULL,
    callee VARCHAR NOT NULL, callee_operation VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    measure VARCHAR NOT NULL, bucket INTEGER NOT NULL, calls BIGINT NOT NULL,
    errors BIGINT NOT NULL, fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_names (service VARCHAR NOT NULL, operation VARCHAR NOT NULL)""",
    """CREATE TABLE rollup_services (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, spans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true)""",
)


def _add_rollups(connection: Connection) -> None:
    """Version 3: per-minute rollups, filled from the spans already stored."""
    for statement in _ROLLUP_TABLES_V3:
        connection.execute(statement)
    backfill.fill(connection)


# Version 4's table as it was made then (``schema.summary_statements`` is the newest).
_SUMMARY_TABLE_V4: Final = """CREATE TABLE trace_summaries (
    trace_id VARCHAR NOT NULL, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL,
    last_start_ns BIGINT NOT NULL,
    root STRUCT(orphan BOOLEAN, start_ns BIGINT, span_id VARCHAR, service VARCHAR,
                operation VARCHAR) NOT NULL,
    spans BIGINT NOT NULL, errors BIGINT NOT NULL, services VARCHAR[] NOT NULL,
    operations VARCHAR[] NOT NULL,
    sessions VARCHAR[] NOT NULL, users VARCHAR[] NOT NULL,
    origin_service VARCHAR, origin_operation VARCHAR,
    fresh BOOLEAN NOT NULL DEFAULT true)"""


def _add_trace_summaries(connection: Connection) -> None:
    """Version 4: a summary row per trace, filled from the spans already stored."""
    connection.execute(_SUMMARY_TABLE_V4)
    backfill.fill_summaries(connection)


# Version 5's tables as they were made then (``schema.health_rollup_statements`` is
# the newest).
_HEALTH_TABLES_V5: Final[tuple[str, ...]] = (
    """CREATE TABLE rollup_roots (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status VARCHAR NOT NULL, bucket INTEGER NOT NULL, spans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_entries (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    spans BIGINT NOT NULL, unparented BIGINT NOT NULL, fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_orphans (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, orphans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_orphan_spans (
    trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL, parent_span_id VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL, service VARCHAR NOT NULL)""",
    """CREATE TABLE rollup_hops (
    minute BIGINT NOT NULL, producer VARCHAR NOT NULL, consumer VARCHAR NOT NULL,
    destination VARCHAR NOT NULL, messages BIGINT NOT NULL, broken BIGINT NOT NULL,
    linked BIGINT NOT NULL, fresh BOOLEAN NOT NULL DEFAULT true)""",
)


def _add_health_rollups(connection: Connection) -> None:
    """Version 5: hotspot and propagation rollups, filled from the spans already stored."""
    for statement in _HEALTH_TABLES_V5:
        connection.execute(statement)
    health_rollups.fill(connection)


# Version 6's table as it was made then (``schema.sdk_rollup_statements`` is the newest).
_SDK_ROLLUP_V6: Final = """CREATE TABLE rollup_sdk_stats (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, instance VARCHAR NOT NULL,
    reports BIGINT NOT NULL, reported_ns BIGINT NOT NULL, report VARCHAR NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true)"""


def _add_sdk_rollup(connection: Connection) -> None:
    """Version 6: the SDK telemetry rollup, filled from the stats spans already stored."""
    connection.execute(_SDK_ROLLUP_V6)
    sdk_rollup.fill(fetcher(connection))


# Version 7's tables as they were made then (``schema.slo_statements`` is the newest).
_SLO_TABLES_V7: Final[tuple[str, ...]] = (
    """CREATE TABLE rollup_retries (
    minute BIGINT NOT NULL, caller VARCHAR NOT NULL, callee VARCHAR NOT NULL,
    retried BIGINT NOT NULL, fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_synthetic (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    status VARCHAR NOT NULL, bucket INTEGER NOT NULL, spans BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE rollup_synthetic_edges (
    minute BIGINT NOT NULL, caller VARCHAR NOT NULL, callee VARCHAR NOT NULL,
    bucket INTEGER NOT NULL, calls BIGINT NOT NULL, errors BIGINT NOT NULL,
    fresh BOOLEAN NOT NULL DEFAULT true)""",
    """CREATE TABLE alert_states (
    slo VARCHAR NOT NULL, alert VARCHAR NOT NULL, state VARCHAR NOT NULL,
    active_since_ns BIGINT NOT NULL, updated_ns BIGINT NOT NULL, firing_since_ns BIGINT,
    resolved_ns BIGINT, summary VARCHAR NOT NULL, labels VARCHAR NOT NULL)""",
)


def _add_slo_tables(connection: Connection) -> None:
    """Version 7: retries and synthetic traffic per minute, filled from the spans, and
    the (empty) alert state."""
    for statement in _SLO_TABLES_V7:
        connection.execute(statement)
    backfill.fill(connection, rollups.rebuild_slo_tables, "SLO rollups")


def _add_exemplars(connection: Connection) -> None:
    """Version 8: the exemplar table, empty (examples are kept as spans arrive)."""
    connection.execute(
        """CREATE TABLE rollup_exemplars (
    minute BIGINT NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    slot INTEGER NOT NULL, trace_id VARCHAR NOT NULL, duration_ns BIGINT NOT NULL,
    start_ns BIGINT NOT NULL)"""
    )


# Version 9's tables as they were made then (``schema.journey_statements`` is the newest).
_JOURNEY_TABLES_V9: Final[tuple[str, ...]] = (
    """CREATE TABLE journey_steps (
    session_id VARCHAR NOT NULL, trace_id VARCHAR NOT NULL, start_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL, service VARCHAR NOT NULL, operation VARCHAR NOT NULL,
    failed BOOLEAN NOT NULL, error_services VARCHAR[] NOT NULL, services VARCHAR[] NOT NULL)""",
    """CREATE TABLE journey_synthetic (trace_id VARCHAR NOT NULL, start_ns BIGINT NOT NULL)""",
)
_MERGED_V9: Final = "threadline_merged_summaries"


def _add_journey_steps(connection: Connection) -> None:
    """Version 9: a step per trace of a session, from the trace summaries."""
    for statement in _JOURNEY_TABLES_V9:
        connection.execute(statement)
    run = fetcher(connection)
    # Every trace's rows merged as ``summaries.fold`` merges them (folded or not).
    run(
        f"CREATE TEMP TABLE {_MERGED_V9} AS SELECT trace_id, {summaries.MERGED}"
        " FROM trace_summaries GROUP BY trace_id",
        [],
    )
    journey_steps.fill(run, _MERGED_V9)
    run(f"DROP TABLE {_MERGED_V9}", [])


def _add_logs(connection: Connection) -> None:
    """Version 10: the log table and its indexes, empty (logs are kept as they arrive)."""
    connection.execute(
        """CREATE TABLE logs (
    time_ns BIGINT NOT NULL, observed_ns BIGINT NOT NULL, trace_id VARCHAR,
    span_id VARCHAR, service_name VARCHAR NOT NULL, severity_number BIGINT NOT NULL,
    severity_text VARCHAR NOT NULL, body VARCHAR NOT NULL, body_kind VARCHAR NOT NULL,
    session_id VARCHAR, user_id VARCHAR, journey_id VARCHAR, attributes VARCHAR NOT NULL,
    resource VARCHAR NOT NULL, scope_name VARCHAR NOT NULL)"""
    )
    for column in ("trace_id", "session_id", "user_id"):
        connection.execute(f"CREATE INDEX logs_{column} ON logs ({column})")


def _add_drill_results(connection: Connection) -> None:
    """Version 11: the drill results table, empty (drills record as they run)."""
    connection.execute(
        """CREATE TABLE drill_results (
    probe VARCHAR NOT NULL, started_ns BIGINT NOT NULL, duration_ns BIGINT NOT NULL,
    passed BOOLEAN NOT NULL, journey_id VARCHAR NOT NULL, trace_ids VARCHAR[] NOT NULL,
    services VARCHAR[] NOT NULL, problems VARCHAR NOT NULL, verdict VARCHAR NOT NULL)"""
    )


def _add_documents(connection: Connection) -> None:
    """Version 12: the kept documents' table, empty (the server imports the files)."""
    connection.execute(
        """CREATE TABLE documents (
    name VARCHAR NOT NULL, body VARCHAR NOT NULL, etag VARCHAR NOT NULL,
    saved_ns BIGINT NOT NULL)"""
    )


def _add_journey_attributes(connection: Connection) -> None:
    """Version 13: each journey step's entry span attributes (from the stored spans)
    and error origin (from the trace summaries)."""
    connection.execute("ALTER TABLE journey_steps ADD COLUMN attributes VARCHAR[] DEFAULT []")
    connection.execute("ALTER TABLE journey_steps ADD COLUMN error_origin VARCHAR")
    run = fetcher(connection)
    # The root of every trace with a step, merged as ``summaries.fold`` merges it, and
    # its error origin (on the folded row; a trace not folded yet gets it when it is).
    run(
        f"CREATE TEMP TABLE {_MERGED_V9} AS SELECT trace_id, min(root) AS root,"
        " any_value(origin_service) AS origin_service"
        " FROM trace_summaries WHERE trace_id IN (SELECT trace_id FROM journey_steps)"
        " GROUP BY trace_id",
        [],
    )
    journey_steps.fill_attributes(run, _MERGED_V9)
    run(f"DROP TABLE {_MERGED_V9}", [])


# Version 14's tables and indexes as they were made then (``schema.journey_session_statements``
# is the newest).
_JOURNEY_SESSION_TABLES_V14: Final[tuple[str, ...]] = (
    """CREATE TABLE journey_session_touches (
    session_id VARCHAR NOT NULL, service VARCHAR NOT NULL, operation VARCHAR,
    last_minute BIGINT NOT NULL)""",
    """CREATE TABLE journey_session_failures (
    session_id VARCHAR NOT NULL, last_minute BIGINT NOT NULL)""",
    """CREATE TABLE journey_slo_minutes (
    service VARCHAR NOT NULL, operation VARCHAR, minute BIGINT NOT NULL,
    sessions BIGINT NOT NULL, bad BIGINT NOT NULL)""",
    "CREATE INDEX journey_steps_session_id ON journey_steps (session_id)",
    "CREATE INDEX journey_session_touches_session_id ON journey_session_touches (session_id)",
    "CREATE INDEX journey_session_failures_session_id ON journey_session_failures (session_id)",
)


def _add_journey_sessions(connection: Connection) -> None:
    """Version 14: the journey SLO state per session and minute, from the journey steps."""
    for statement in _JOURNEY_SESSION_TABLES_V14:
        connection.execute(statement)
    run = fetcher(connection)
    # Version 9 made steps of traces not folded yet too; from now on only folded traces
    # have steps (``journey_sessions``): theirs come back when they are folded, and reads
    # merge them from their summary rows until then.
    run(
        "DELETE FROM journey_steps"
        " WHERE trace_id NOT IN (SELECT trace_id FROM trace_summaries WHERE NOT fresh)",
        [],
    )
    journey_sessions.fill(run)


def _add_journey_links(connection: Connection) -> None:
    """Version 15: the columns of each journey step's next step in its session, filled
    by version 22's step with the rest of the links (a file is always taken to the
    latest version; a map reads no file of a version between)."""
    for column, kind in zip(journey_links.NEXT_COLUMNS, journey_links.NEXT_TYPES, strict=True):
        connection.execute(f"ALTER TABLE journey_steps ADD COLUMN {column} {kind}")


def _add_message_spans(connection: Connection) -> None:
    """Version 16: the message spans' ids, kept for the hop lookup, from the spans."""
    connection.execute(
        """CREATE TABLE rollup_message_spans (
    trace_id VARCHAR NOT NULL, span_id VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL, service VARCHAR NOT NULL, message_id VARCHAR NOT NULL,
    destination VARCHAR NOT NULL, links VARCHAR NOT NULL)"""
    )
    health_rollups.fill_message_spans(fetcher(connection))


def _add_journey_summaries(connection: Connection) -> None:
    """Version 17: each session's journey summary, from the folded trace summaries."""
    connection.execute(JOURNEY_SUMMARIES_DDL)
    journey_summaries.fill(fetcher(connection))


def _drop_span_id_indexes(connection: Connection) -> None:
    """Version 18: no index of the span table on session or user ids (read elsewhere)."""
    connection.execute("DROP INDEX IF EXISTS spans_session_id")
    connection.execute("DROP INDEX IF EXISTS spans_user_id")


def _add_failed_spans(connection: Connection) -> None:
    """Version 19: the failed traces' spans kept apart, copied from the span table."""
    # The span table's columns as this file has them. A file whose copies exist was
    # made with them (``create_statements``); ``keep`` replaces copies, never doubles.
    connection.execute(
        "CREATE TABLE IF NOT EXISTS failed_trace_spans AS SELECT * FROM spans LIMIT 0"
    )
    kept_apart.fill(fetcher(connection), slow=False)


def _keep_a_share_apart(connection: Connection) -> None:
    """Version 20: a share of all traces by hash kept apart too, copied again as
    version 19 copies (a file upgraded through version 19 here has them already)."""
    kept_apart.fill(fetcher(connection), slow=False)


def _add_summary_durations(connection: Connection) -> None:
    """Version 21: each folded summary row's duration, from its first start and last end."""
    connection.execute("ALTER TABLE trace_summaries ADD COLUMN IF NOT EXISTS duration_ns BIGINT")
    connection.execute("UPDATE trace_summaries SET duration_ns = end_ns - start_ns WHERE NOT fresh")


def _add_previous_steps(connection: Connection) -> None:
    """Version 22: where each journey step's same step and same move came before in its
    session, and its next step, from the stored steps."""
    columns = zip(journey_links.PREVIOUS_COLUMNS, journey_links.PREVIOUS_TYPES, strict=True)
    for column, kind in columns:
        connection.execute(f"ALTER TABLE journey_steps ADD COLUMN IF NOT EXISTS {column} {kind}")
    journey_links.fill(fetcher(connection))


def _keep_slow_traces_apart(connection: Connection) -> None:
    """Version 23: the slow traces' spans kept apart, copied from the span table by the
    last hour's thresholds."""
    # The span table's columns as this file has them, as version 19 makes its table.
    connection.execute("CREATE TABLE IF NOT EXISTS slow_trace_spans AS SELECT * FROM spans LIMIT 0")
    kept_apart.fill(fetcher(connection), failed=False)


def _add_resource_keys(connection: Connection) -> None:
    """Version 24: the keys the stored spans' resources carry, from their documents."""
    connection.execute("CREATE TABLE IF NOT EXISTS resource_keys (key VARCHAR)")
    resource_keys.fill(fetcher(connection))


def _add_request_paths(connection: Connection) -> None:
    """Version 25: the kept request paths (``kept_paths``), walked from the copies kept
    apart that lie in the shares."""
    connection.execute(REQUEST_PATHS_DDL)
    kept_paths.fill(fetcher(connection))


STEPS: Final[tuple[Step, ...]] = (
    Step(2, _record_versions),
    Step(3, _add_rollups),
    Step(4, _add_trace_summaries),
    Step(5, _add_health_rollups),
    Step(6, _add_sdk_rollup),
    Step(7, _add_slo_tables),
    Step(8, _add_exemplars),
    Step(9, _add_journey_steps),
    Step(10, _add_logs),
    Step(11, _add_drill_results),
    Step(12, _add_documents),
    Step(13, _add_journey_attributes),
    Step(14, _add_journey_sessions),
    Step(15, _add_journey_links),
    Step(16, _add_message_spans),
    Step(17, _add_journey_summaries),
    Step(18, _drop_span_id_indexes),
    Step(19, _add_failed_spans),
    Step(20, _keep_a_share_apart),
    Step(21, _add_summary_durations),
    Step(22, _add_previous_steps),
    Step(23, _keep_slow_traces_apart),
    Step(24, _add_resource_keys),
    Step(25, _add_request_paths),
)
LATEST: Final = STEPS[-1].version


def open_schema(connection: Connection, path: Path, *, steps: Sequence[Step] = STEPS) -> None:
    """Give the file at ``path`` the newest schema, migrating it if it is older.

    ``steps`` is for tests that need a step of their own (a slow one, to be killed).
    Raises ``StoreError`` for a file from a newer release or a step that fails; in
    both cases the file keeps the version it had before the failing step.
    """
    _check_order(steps)
    latest = steps[-1].version
    try:
        found = stored_version(connection)
    except StoreError as exc:
        raise StoreError(f"cannot open the span store at {path}: {exc}") from exc
    if found is None:
        with _transaction(connection, path, f"creating the schema (version {latest})"):
            for statement in create_statements():
                connection.execute(statement)
            _record(connection, latest)
        return
    if found > latest:
        release = _applied_by(connection, found)
        raise StoreError(
            f"the span store at {path} has schema version {found} (written by Threadline "
            f"{release}); this Threadline reads schema versions up to {latest}: run the newer "
            "release on it, or point `db` at another file"
        )
    for step in steps:
        if step.version <= found:
            continue
        started = time.monotonic()
        log.info(
            "upgrading the span store at %s from schema version %d to %d",
            path,
            step.version - 1,
            step.version,
        )
        doing = f"upgrading from schema version {step.version - 1} to {step.version}"
        with _transaction(connection, path, doing):
            step.apply(connection)
            _record(connection, step.version)
        log.info(
            "the span store at %s is at schema version %d (%.2f s)",
            path,
            step.version,
            time.monotonic() - started,
        )
    for statement in create_statements():
        connection.execute(statement)


def stored_version(connection: Connection) -> int | None:
    """The file's schema version: None for a new (empty) file, 1 before versions existed."""
    tables = {
        row[0]
        for row in connection.execute(
            "SELECT table_name FROM duckdb_tables()"
            " WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    }
    if VERSION_TABLE in tables:
        rows = connection.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchall()
        if rows[0][0] is None:
            raise StoreError(f"{VERSION_TABLE} is empty: the file's schema version is unknown")
        return int(rows[0][0])
    if TABLE in tables:
        return 1
    return None


def _check_order(steps: Sequence[Step]) -> None:
    versions = [step.version for step in steps]
    if not versions or versions != list(range(2, 2 + len(versions))):
        raise ValueError(f"schema steps must be versions 2, 3, ... in order; got {versions}")


def _record(connection: Connection, version: int) -> None:
    connection.execute(
        f"INSERT INTO {VERSION_TABLE} VALUES (?, ?, ?)", [version, time.time_ns(), _release()]
    )


def _applied_by(connection: Connection, version: int) -> str:
    rows = connection.execute(
        f"SELECT applied_by FROM {VERSION_TABLE} WHERE version = ?", [version]
    ).fetchall()
    return str(rows[0][0]) if rows else "unknown"


def _release() -> str:
    try:
        return metadata.version("threadline")
    except metadata.PackageNotFoundError:
        return "unknown"


@contextmanager
def _transaction(connection: Connection, path: Path, doing: str) -> Iterator[None]:
    """``BEGIN`` ... ``COMMIT``; an exception rolls back, a database error becomes StoreError."""
    connection.execute("BEGIN TRANSACTION")
    try:
        yield
        connection.execute("COMMIT")
    except duckdb.Error as exc:
        _rollback(connection)
        raise StoreError(f"{doing} of {path} failed and was undone: {exc}") from exc
    except BaseException:
        _rollback(connection)
        raise


def _rollback(connection: Connection) -> None:
    # A failed COMMIT has already ended the transaction; ROLLBACK then has nothing to do.
    with suppress(duckdb.TransactionException):
        connection.execute("ROLLBACK")

"""One writer's staging of a batch, the one mechanism every count after an insert reads.

Per batch, in the writer's turn: ``Counter.stage`` puts the batch's span keys in
``staged_spans`` under the writer's own partition (its id, random per process) and
registers the batch's new operation names (before the insert, whose views read
them); the writer inserts the spans; ``Counter.count`` counts what the batch
completes — the fleet edges (``rollups.count_edges``) and the calls, message hops
and orphans of ``pair_rollups.count_batch`` — reading the batch from its own
partition, then drops that partition.

**Several writers on one database** (several ``threadline serve`` processes on one
ClickHouse server or cluster) are kept apart by the partition: a writer reads and
drops only its own id's rows. A span staged by another writer is a batch in flight,
and a pair with a side in it is left to the count that finds it no longer staged
(``staged``), so two writers holding the two sides of a call count it once, whatever
the order of their inserts and counts. What stays open without a transaction: two
counts running at the very same moment, each seeing the other's side staged, leave
that pair uncounted (and an orphan found by one while the other's insert of its
parent lands can stay counted).

**A writer killed mid-batch** leaves its partition behind, under an id no later
process takes, so no writer counts or drops it: that batch's calls, hops and
orphans stay uncounted, as after a failed count (the sender's retry is dropped as
already stored, ``writer``), and pairs with its spans count once those keys are
gone: ``staged_at`` and the table's TTL drop them after ``STAGED_TTL_S``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Final

import pyarrow as pa

from threadline.server.storage.clickhouse import pair_rollups, rollups, staged
from threadline.server.storage.clickhouse.client import Connection
from threadline.server.storage.clickhouse.rollup_schema import STAGED
from threadline.server.storage.clickhouse.staged import Batch
from threadline.server.storage.clickhouse.tables import Row, Tables

_STAGED_COLUMNS: Final = ("trace_id", "span_id", "start_ns", "service_name", "name")


class Counter:
    """One writer's part of the counts after each insert, under its own id."""

    def __init__(self, connection: Connection, t: Tables, writer: str | None = None) -> None:
        self._connection = connection
        self._t = t
        self._batch = Batch.of(t.database, writer or uuid.uuid4().hex)

    @property
    def writer(self) -> str:
        return self._batch.writer

    def stage(self, fresh: pa.Table) -> None:
        """Before the spans' insert: stage the batch's keys and register its names."""
        self._drop()  # what a failed count of this writer's last batch left
        keys = fresh.select(list(_STAGED_COLUMNS)).append_column(
            "writer", pa.array([self._batch.writer] * fresh.num_rows, pa.string())
        )
        self._connection.insert_arrow(STAGED, keys, doing="staging spans for the rollups")
        self._command(rollups.register_names(self._t, self._batch.names), self._batch.params)

    def count(self, low_ns: int, high_ns: int) -> None:
        """After the spans' insert: count what the batch completes, then forget the
        batch. ``low_ns`` and ``high_ns`` bound the batch's starts."""
        rollups.count_edges(self._command, self._t, self._batch, low_ns, high_ns)
        pair_rollups.count_batch(self._rows, self._command, self._t, self._batch, low_ns, high_ns)
        self._drop()

    def _drop(self) -> None:
        self._connection.command(
            staged.drop(self._t), self._batch.params, doing="clearing staged spans"
        )

    def _rows(self, sql: str, params: Mapping[str, object]) -> list[Row]:
        return self._connection.rows(sql, params, doing="counting calls")

    def _command(self, sql: str, params: Mapping[str, object]) -> None:
        self._connection.command(sql, params, doing="counting calls")

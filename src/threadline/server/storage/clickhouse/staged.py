"""The SQL that names one writer's staged batch in ``staged_spans``.

Every count after an insert (``rollups.count_edges``, ``pair_rollups.count_batch``)
reads the batch through these fragments, each bound to the writer's own id by the
parameter ``{w:String}``: a writer reads its own partition only, and never counts
or drops another writer's rows.

A span staged by *another* writer is a batch in flight: stored (or about to be) and
not counted yet. A pair with a side in such a batch is left to the count that finds
the other side no longer staged (``settled``), so of two writers that both stored
their sides before either counted, the one that counts last counts the pair, once.
Orphans need no such care: a span counted as an orphan is taken back when its
parent's batch is counted (``pair_rollups``).
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.server.storage.clickhouse.rollup_schema import STAGED
from threadline.server.storage.clickhouse.schema import quote
from threadline.server.storage.clickhouse.tables import Tables

_KEY = "(trace_id, span_id, start_ns)"


@dataclass(frozen=True, slots=True)
class Batch:
    """One writer's staged batch, as SQL fragments taking ``params``."""

    writer: str
    table: str

    @staticmethod
    def of(database: str, writer: str) -> Batch:
        return Batch(writer=writer, table=f"{quote(database)}.{STAGED}")

    @property
    def params(self) -> dict[str, object]:
        return {"w": self.writer}

    @property
    def keys(self) -> str:
        """The batch's span keys (trace id, span id, start)."""
        return f"(SELECT trace_id, span_id, start_ns FROM {self.table} WHERE writer = {{w:String}})"

    @property
    def traces(self) -> str:
        """The batch's trace ids (a stored span's bloom filter skips other traces)."""
        return f"(SELECT trace_id FROM {self.table} WHERE writer = {{w:String}})"

    @property
    def names(self) -> str:
        """The batch's service and span names (``service_name``, ``name``)."""
        return f"(SELECT service_name, name FROM {self.table} WHERE writer = {{w:String}})"

    def member(self, alias: str = "") -> str:
        """The span (of ``alias``) is in the batch."""
        return f"{_key(alias)} IN {self.keys}"

    def settled(self, alias: str = "") -> str:
        """The span (of ``alias``) is in no other writer's batch in flight."""
        return (
            f"{_key(alias)} NOT IN (SELECT trace_id, span_id, start_ns FROM {self.table}"
            " WHERE writer != {w:String})"
        )


def stage_stored(batch: Batch, t: Tables, condition: str) -> str:
    """Stage the stored spans matching ``condition`` as ``batch`` (rebuilding from spans)."""
    return (
        f"INSERT INTO {batch.table} (writer, trace_id, span_id, start_ns, service_name, name)"
        f" SELECT {{w:String}}, trace_id, span_id, start_ns, service_name, name FROM {t.spans}"
        f" WHERE {condition}"
    )


def drop(t: Tables) -> str:
    """Forget a writer's batch (``{w:String}``): its partition goes whole."""
    return f"ALTER TABLE {t.parts_of(STAGED)} DROP PARTITION {{w:String}}"


def _key(alias: str) -> str:
    if not alias:
        return _KEY
    return f"({alias}.trace_id, {alias}.span_id, {alias}.start_ns)"

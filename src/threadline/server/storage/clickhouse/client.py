"""Open a ClickHouse client for a store URL, and run statements on it.

One code path for both variants: ``clickhouse_connect.get_client`` over HTTP(S) for a
server or cluster, and the same function with chDB's ``chdb://`` DSN for the engine
embedded in this process. The SQL, the parameters and the Arrow inserts are the same,
so what the tests prove on chDB holds for a server (except replication, see
``cluster.py``).

chDB runs one engine per process and its client is one handle: calls on it are
serialised by a lock. A server client sends each call as its own HTTP request with
no session (``autogenerate_session_id=False``), so calls from many threads run at
once. Error messages are passed through ``_safe`` so the password never leaves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, Final

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from threadline.server.storage.base import StoreError
from threadline.store_url import MASK, StoreUrl

# The database an embedded chDB store keeps its tables in.
CHDB_DATABASE: Final = "threadline"
# Seconds to wait for a server to accept a connection; a store that cannot be
# reached fails the server's start quickly rather than hanging it.
CONNECT_TIMEOUT_S: Final = 10
# Longest one statement may run (deletes and OPTIMIZE on a large table are slow).
QUERY_TIMEOUT_S: Final = 300

Row = tuple[Any, ...]
Params = Mapping[str, object]


class Connection:
    """A client, the database the store's tables live in, and the rule for running calls."""

    def __init__(self, url: StoreUrl) -> None:
        self._url = url
        self._lock: threading.Lock | None = None
        try:
            if url.backend == "chdb":
                assert url.path is not None
                url.path.mkdir(parents=True, exist_ok=True)
                self.database = CHDB_DATABASE
                self._client: Client = clickhouse_connect.get_client(
                    dsn=f"chdb://{url.path.resolve()}"
                )
                self._lock = threading.Lock()
            else:
                self.database = url.database
                self._client = clickhouse_connect.get_client(
                    host=url.host,
                    port=url.port,
                    username=url.username or "default",
                    password=url.password,
                    secure=url.secure,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    send_receive_timeout=QUERY_TIMEOUT_S,
                    autogenerate_session_id=False,
                    # On a cluster an insert goes to a Distributed table: answer only
                    # once every shard has its rows, not once they are queued here.
                    settings={"insert_distributed_sync": 1} if url.cluster else None,
                )
        except Exception as exc:  # the drivers raise many types; each is reported once
            raise StoreError(f"cannot open the store {url.redacted}: {self._safe(exc)}") from None

    @property
    def embedded(self) -> bool:
        return self._url.backend == "chdb"

    def rows(self, sql: str, params: Params | None = None, *, doing: str) -> list[Row]:
        """Every row of ``sql``; ``doing`` names the work in errors."""
        with self._calling(doing):
            result = self._client.query(sql, parameters=dict(params or {}))
            return [tuple(row) for row in result.result_rows]

    def command(self, sql: str, params: Params | None = None, *, doing: str) -> None:
        with self._calling(doing):
            self._client.command(sql, parameters=dict(params or {}))

    def insert_arrow(self, table: str, data: pa.Table, *, doing: str) -> None:
        """Append ``data`` synchronously: returns once the server has written the part."""
        with self._calling(doing):
            self._client.insert_arrow(table, data, database=self.database)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]], *, doing: str
    ) -> None:
        """Append ``rows`` to ``table`` in one insert (one block: all of them or none)."""
        with self._calling(doing):
            self._client.insert(
                table,
                [list(row) for row in rows],
                column_names=list(columns),
                database=self.database,
            )

    def close(self) -> None:
        with self._calling("closing the store"):
            self._client.close()

    @contextmanager
    def _calling(self, doing: str) -> Iterator[None]:
        with self._lock if self._lock is not None else nullcontext():
            try:
                yield
            except (ClickHouseError, OSError) as exc:
                raise StoreError(f"{doing} failed: {self._safe(exc)}") from None

    def _safe(self, exc: BaseException) -> str:
        """The error's text with the password masked wherever a driver put it."""
        text = str(exc)
        return text.replace(self._url.password, MASK) if self._url.password else text

"""The ClickHouse store: a ClickHouse server or cluster, or chDB in the process."""

from threadline.server.storage.clickhouse.store import NOT_YET, ClickHouseStore

__all__ = ["NOT_YET", "ClickHouseStore"]

"""The ClickHouse store: a ClickHouse server or cluster, or chDB in the process.

``store`` holds ``ClickHouseStore`` (it needs ``clickhouse-connect``); ``schema``
and ``cluster`` are plain text and import no driver, so printing the DDL does not
need one.
"""

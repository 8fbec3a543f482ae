"""`threadline store ddl`: the ClickHouse schema as SQL, for one node or a cluster.

A cluster's tables are created by its operator, once, with the printed script
(``clickhouse-client --multiquery < threadline.sql``); the servers then find them
and only check the schema version. Printing needs no driver and no database.
"""

from __future__ import annotations

import click

DEFAULT_DATABASE = "threadline"


@click.group()
def store() -> None:
    """The span store: print the ClickHouse schema."""


@store.command()
@click.option(
    "--cluster",
    "cluster_name",
    default=None,
    help="Cluster name (from remote_servers): replicated tables ON CLUSTER, Distributed by trace.",
)
@click.option("--database", default=DEFAULT_DATABASE, show_default=True, help="Database name.")
@click.option(
    "--ttl-days",
    type=click.IntRange(min=1),
    default=None,
    help="Drop spans and logs older than this many days (whole day partitions).",
)
def ddl(cluster_name: str | None, database: str, ttl_days: int | None) -> None:
    """Print the ClickHouse DDL of the span store (single node unless --cluster)."""
    # Imported here: `threadline --help` lists this command without loading the server.
    from threadline.server.storage.clickhouse import cluster
    from threadline.server.storage.clickhouse import ddl as schema_ddl

    if cluster_name is not None:
        click.echo(cluster.script(database, cluster_name, ttl_days=ttl_days), nl=False)
        return
    statements = schema_ddl.statements(database, ttl_days=ttl_days)
    click.echo("\n\n".join(f"{s};" for s in statements))


COMMANDS: list[click.Command] = [store]

"""The SDK's own telemetry on ClickHouse: the last ``threadline.sdk.stats`` span per process.

Counters in a stats span count since the process started, so the newest span of
each process in the window holds its figures (``sdk_telemetry.process_stats`` reads
them). A process is told apart by ``service.instance.id``, else by host name and
pid, as the DuckDB store tells them apart.

Read from ``spans`` directly: service and span name are the first two columns of its
sort key, so the read touches only the granules of the service's stats spans in the
window, a few per process per day (one report every ``stats_interval_s``).
"""

from __future__ import annotations

import json
from typing import Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.aggregates import TimeWindow
from threadline.server.sdk_telemetry import SdkStats, process_stats
from threadline.server.storage.clickhouse.tables import Fetch, Tables


def _text(column: str, key: str) -> str:
    """The map's value at ``key`` as text (a JSON string unquoted, any other value as
    its JSON text), NULL where the key is missing or null, as DuckDB's
    ``json_extract_string`` gives it."""
    value = f"{column}['{key}']"
    return (
        f"if(mapContains({column}, '{key}') AND {value} != 'null',"
        f" if(startsWith({value}, '\"'), JSONExtractString({value}), {value}), NULL)"
    )


_INSTANCE: Final = (
    f"coalesce({_text('resource', 'service.instance.id')},"
    f" concat(coalesce({_text('resource', 'host.name')}, ''), ' pid ',"
    f" coalesce({_text('attributes', 'process.pid')}, {_text('resource', 'process.pid')}, '?')))"
)
# The same instant goes to the greater attribute text, so the answer never depends on
# the order rows are read in.
_LATEST: Final = f"""
SELECT {_INSTANCE} AS instance, max(start_ns), count(),
       argMax(attributes, (start_ns, toString(attributes)))
FROM {{spans}}
WHERE service_name = {{{{service:String}}}} AND name = '{SDK_STATS_SPAN}'
  AND start_ns >= {{{{low:Int64}}}} AND start_ns < {{{{high:Int64}}}}
GROUP BY instance
ORDER BY max(start_ns) DESC, instance"""


def sdk_stats(fetch: Fetch, t: Tables, service: str, window: TimeWindow) -> SdkStats:
    """The stats spans of ``service`` that started in the window, newest process first."""
    rows = fetch(
        _LATEST.format(spans=t.spans),
        {"service": service, "low": window.start_ns, "high": window.end_ns},
    )
    return SdkStats(
        service=service,
        window=window,
        processes=tuple(
            process_stats(
                str(instance),
                int(reported),
                int(reports),
                # Values are kept as their JSON text: decoded, they are what DuckDB reads.
                {key: json.loads(value) for key, value in attributes.items()},
            )
            for instance, reported, reports, attributes in rows
        ),
    )

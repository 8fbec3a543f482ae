"""Propagation findings in DuckDB: where trace context was lost.

Three signs, each one grouped scan or join over the window:

- *unparented entries*: SERVER/CONSUMER spans without a parent in services that
  other services call, i.e. the callee of some edge of the service map (a call, a
  message hop, or an inferred call: a SERVER span under another service's span),
  so callers normally do propagate to them. A service whose only parented entry
  spans sit under its own spans (nested server instrumentation) is called by no
  one. A span with links started its trace on purpose and does not count;
- *orphans*: spans whose parent span id is not in their trace (the parent was
  lost, dropped, or its trace id was replaced on the way);
- *message hops*: producer and consumer spans that carry the same
  ``messaging.message.id`` in different traces, unless the consumer links to the
  producer (the OpenTelemetry way to start a trace per consumed batch).
"""

from __future__ import annotations

from typing import Final

from threadline import conventions
from threadline.server.aggregates import (
    MessageHop,
    OrphanSpans,
    PropagationFindings,
    TimeWindow,
    UnparentedEntries,
)
from threadline.server.storage.duckdb.schema import TABLE
from threadline.server.storage.duckdb.sql import (
    HAS_PARENT,
    NO_PARENT,
    USER_TRAFFIC,
    Fetch,
    json_pointer,
)

_UNPARENTED: Final = f"""
WITH entry AS (
    SELECT service_name, name, trace_id, {NO_PARENT} AND links = '[]' AS unparented
    FROM {TABLE}
    WHERE kind IN ('server', 'consumer') AND {USER_TRAFFIC} AND start_ns >= ? AND start_ns < ?
),
called AS (
    SELECT DISTINCT callee.service_name
    FROM {TABLE} AS callee JOIN {TABLE} AS caller
      ON callee.trace_id = caller.trace_id AND callee.parent_span_id = caller.span_id
    WHERE callee.kind IN ('server', 'consumer') AND callee.start_ns >= ? AND callee.start_ns < ?
      AND ((caller.kind = 'client' AND callee.kind = 'server')
           OR (caller.kind = 'producer' AND callee.kind = 'consumer')
           OR (callee.kind = 'server' AND caller.service_name <> callee.service_name))
)
SELECT service_name, name, count(*), count(*) FILTER (WHERE unparented),
       min(trace_id) FILTER (WHERE unparented)
FROM entry
WHERE service_name IN (SELECT service_name FROM called)
GROUP BY service_name, name
ORDER BY service_name, name"""

_ORPHANS: Final = f"""
SELECT child.service_name, count(*), min(child.trace_id)
FROM {TABLE} AS child
WHERE {HAS_PARENT} AND child.start_ns >= ? AND child.start_ns < ?
  AND NOT EXISTS (
      SELECT 1 FROM {TABLE} AS parent
      WHERE parent.trace_id = child.trace_id AND parent.span_id = child.parent_span_id)
GROUP BY child.service_name
ORDER BY child.service_name"""

# Parameters: the message-id pointer (twice), the destination pointer, the window (twice).
_MESSAGE_HOPS: Final = f"""
WITH producer AS (
    SELECT trace_id, span_id, service_name,
           json_extract_string(attributes, ?) AS message_id,
           coalesce(json_extract_string(attributes, ?), '') AS destination
    FROM {TABLE} WHERE kind = 'producer'
),
consumer AS (
    SELECT trace_id, service_name, links,
           json_extract_string(attributes, ?) AS message_id
    FROM {TABLE} WHERE kind = 'consumer' AND start_ns >= ? AND start_ns < ?
),
hop AS (
    SELECT producer.service_name AS producer, consumer.service_name AS consumer,
           producer.destination,
           producer.trace_id AS producer_trace_id, consumer.trace_id AS consumer_trace_id,
           producer.trace_id <> consumer.trace_id AS elsewhere,
           contains(consumer.links, producer.span_id) AS linked
    FROM producer JOIN consumer ON consumer.message_id = producer.message_id
    WHERE producer.message_id IS NOT NULL
)
SELECT producer, consumer, destination, count(*),
       count(*) FILTER (WHERE elsewhere AND NOT linked),
       count(*) FILTER (WHERE elsewhere AND linked),
       arg_min(producer_trace_id, consumer_trace_id) FILTER (WHERE elsewhere AND NOT linked),
       min(consumer_trace_id) FILTER (WHERE elsewhere AND NOT linked)
FROM hop
GROUP BY producer, consumer, destination
ORDER BY producer, consumer, destination"""


def propagation(fetch: Fetch, window: TimeWindow) -> PropagationFindings:
    span_window = [window.start_ns, window.end_ns]
    entries = fetch(_UNPARENTED, [*span_window, *span_window])
    orphans = fetch(_ORPHANS, span_window)
    message_id = json_pointer(conventions.MESSAGING_MESSAGE_ID)
    destination = json_pointer(conventions.MESSAGING_DESTINATION)
    hops = fetch(_MESSAGE_HOPS, [message_id, destination, message_id, *span_window])
    return PropagationFindings(
        window=window,
        entries=tuple(
            UnparentedEntries(row[0], row[1], int(row[2]), int(row[3]), row[4]) for row in entries
        ),
        orphans=tuple(OrphanSpans(row[0], int(row[1]), row[2]) for row in orphans),
        message_hops=tuple(
            MessageHop(
                producer=row[0],
                consumer=row[1],
                destination=row[2],
                messages=int(row[3]),
                broken=int(row[4]),
                linked=int(row[5]),
                example_producer_trace_id=row[6],
                example_consumer_trace_id=row[7],
            )
            for row in hops
        ),
    )

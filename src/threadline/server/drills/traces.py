"""The drill runner's trace reads, straight from the server's own store.

``probing.runner`` asks a ``FetchTrace`` for each step's spans while it waits; the
command line answers from the API, the server from its store (no HTTP round trip to
itself, no token). The spans are given in the API's shape (``verdict.span_from_json``
reads it), so both judge the same fields.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from threadline.probing.runner import FetchTrace
from threadline.server.storage.base import Store


class DrillStopped(Exception):
    """The server is stopping: the run in progress is abandoned, not recorded."""


def store_fetcher(store: Store, stopping: threading.Event) -> FetchTrace:
    """Spans of a trace from ``store``, or None while none has arrived.

    Raises :class:`DrillStopped` once ``stopping`` is set, which ends the runner's
    wait at its next poll.
    """

    def fetch(trace_id: str) -> Sequence[Mapping[str, object]] | None:
        if stopping.is_set():
            raise DrillStopped
        spans = store.get_trace(trace_id)
        if not spans:
            return None
        return [
            {
                "span_id": span.span_id,
                "parent_span_id": span.parent_span_id,
                "service": span.service_name,
                "name": span.name,
                "kind": span.kind.value,
                "start_ns": span.start_ns,
                "end_ns": span.end_ns,
                "attributes": dict(span.attributes),
            }
            for span in spans
        ]

    return fetch

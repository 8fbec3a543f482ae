"""A host service for export fault tests: a threaded WSGI server whose requests make spans.

Run with ``THREADLINE_*`` settings in the environment. Prints one JSON line
``{"port": N}`` when it serves. Routes:

- ``/work?spans=K``: finishes K spans named ``work`` and answers 200;
- ``/stats``: ``threadline.stats()`` and the Python memory traced since start;
- ``/flush``: ``force_flush`` (bounded), then the same as ``/stats``.
"""

import json
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse

from opentelemetry import trace
from werkzeug.serving import make_server

import threadline

tracemalloc.start()
configuration = threadline.configure(service_name="fault-host")
tracer = trace.get_tracer("fault-host")
baseline = tracemalloc.get_traced_memory()[0]


def _stats() -> dict[str, Any]:
    stats = threadline.stats()
    current, peak = tracemalloc.get_traced_memory()
    return {
        "exported": stats.exported,
        "dropped": dict(stats.dropped),
        "dropped_total": stats.dropped_total,
        "retried": stats.retried,
        "queued": stats.queued,
        "memory_growth": current - baseline,
        "peak_growth": peak - baseline,
    }


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    body: dict[str, Any]
    if path == "/work":
        count = int(parse_qs(environ.get("QUERY_STRING", "")).get("spans", ["1"])[0])
        for index in range(count):
            with tracer.start_as_current_span("work", attributes={"index": index}):
                pass
        body = {"made": count}
    elif path == "/flush":
        provider: Callable[..., bool] = configuration.tracer_provider.force_flush  # type: ignore[union-attr]
        body = {"flushed": provider(5_000), **_stats()}
    else:
        body = _stats()
    payload = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [payload]


server = make_server("127.0.0.1", 0, app, threaded=True)
print(json.dumps({"port": server.server_port}), flush=True)
server.serve_forever()

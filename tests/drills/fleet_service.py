"""A service of the drill's fleet: a threaded WSGI server traced by the Threadline SDK.

Run with ``THREADLINE_*`` settings (its endpoint is the drill's proxy) and
``FLEET_SERVICE`` (its name). ``FLEET_DOWNSTREAM``, when set, is the base URL of the
next service, called by ``/work`` through ``requests`` (instrumented: the trace and
the journey's baggage travel on). Prints one JSON line ``{"port": N}`` when it serves.

- ``/work``: calls the next service (if any) and answers 200;
- ``/stats``: this process's ``threadline.stats()``, the SDK's own counters.
"""

import json
import os
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse

import requests
from werkzeug.serving import make_server

import threadline
from threadline.sdk.integrations.http_servers import wrap_wsgi

threadline.configure(service_name=os.environ["FLEET_SERVICE"])
threadline.instrument()
DOWNSTREAM = os.environ.get("FLEET_DOWNSTREAM", "")
session = requests.Session()


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    body: dict[str, Any]
    if path == "/work":
        if DOWNSTREAM:
            session.get(f"{DOWNSTREAM}/work", timeout=10).raise_for_status()
        body = {"done": True}
    else:
        stats = threadline.stats()
        body = {
            "exported": stats.exported,
            "dropped": dict(stats.dropped),
            "dropped_total": stats.dropped_total,
            "retried": stats.retried,
            "failed_requests": stats.failed_requests,
        }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


# /stats is the test's window into the SDK: it is left untraced (a plain app).
traced = wrap_wsgi(app)


def routed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/stats":
        return app(environ, start_response)
    return traced(environ, start_response)


server = make_server("127.0.0.1", 0, routed, threaded=True)
print(json.dumps({"port": server.server_port}), flush=True)
server.serve_forever()

"""A service in a chain for the sampling tests: Flask on werkzeug, calling the next one.

Usage: chain_service.py <service name> [<next service base URL>]. Prints {"port": N}
once it accepts requests. ``GET /work`` calls the next service's ``/work`` and answers
the trace id it ran in (sampled or not); ``GET /rules`` answers the ETag of the rules
the poller last applied; ``GET /flush`` exports every finished span now.
"""

import json
import sys

import flask
import requests
from opentelemetry import trace
from werkzeug.serving import make_server

import threadline
from threadline.sdk import guard, setup

guard.raise_internal_errors(True)
name = sys.argv[1]
downstream = sys.argv[2] if len(sys.argv) > 2 else None
threadline.configure(service_name=name)
app = flask.Flask(__name__)
threadline.instrument(app)


@app.get("/work")
def work() -> flask.Response:
    if downstream is not None:
        requests.get(f"{downstream}/work", timeout=10).raise_for_status()
    trace_id = trace.get_current_span().get_span_context().trace_id
    return flask.jsonify({"trace_id": f"{trace_id:032x}"})


@app.get("/rules")
def rules() -> flask.Response:
    configuration = setup.active()
    sampling = configuration.sampling if configuration is not None else None
    poller = sampling.poller if sampling is not None else None
    return flask.jsonify({"etag": poller.etag if poller is not None else None})


@app.get("/flush")
def flush() -> flask.Response:
    provider = trace.get_tracer_provider()
    flushed = provider.force_flush() if hasattr(provider, "force_flush") else False
    return flask.jsonify({"flushed": flushed})


server = make_server("127.0.0.1", 0, app, threaded=True)
print(json.dumps({"port": server.server_port}), flush=True)
server.serve_forever()

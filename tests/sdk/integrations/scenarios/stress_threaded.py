"""Stress service T: Flask on werkzeug (a thread per request) handing work to a shared pool.

Prints {"port": N} once it accepts requests.
"""

import json

import flask
from opentelemetry import trace
from werkzeug.serving import make_server

import threadline
from threadline.sdk import guard
from threadline.sdk.concurrency import context_executor
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
threadline.configure(service_name="stress-threaded")
app = flask.Flask(__name__)
threadline.instrument(app)
tracer = trace.get_tracer("stress")
pool = context_executor(max_workers=4, thread_name_prefix="stress-pool")


def pooled_work() -> dict[str, str]:
    with tracer.start_as_current_span("pool-work"):
        return current_journey()


@app.get("/work")
def work() -> flask.Response:
    seen = [f.result(timeout=10) for f in [pool.submit(pooled_work), pool.submit(pooled_work)]]
    return flask.jsonify({"pool": seen, "here": current_journey()})


server = make_server("127.0.0.1", 0, app, threaded=True)
print(json.dumps({"port": server.server_port}), flush=True)
server.serve_forever()

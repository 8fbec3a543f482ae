"""Scenario: instrument() called repeatedly on a Flask app served by werkzeug; then one request each
with requests and httpx. Prints what got registered and which frameworks were imported."""

import json
import sys
import threading

import flask
import httpx
import requests
from werkzeug.serving import make_server

import threadline
from threadline.sdk import guard

guard.raise_internal_errors(True)
app = flask.Flask(__name__)


@app.get("/ping")
def ping() -> str:
    return "pong"


threadline.instrument(app)  # configures from the environment first
threadline.instrument(app)
threadline.instrument()
try:
    threadline.instrument(object())
    unsupported = "accepted"
except TypeError as exc:
    unsupported = str(exc)

server = make_server("127.0.0.1", 0, app, threaded=True)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
url = f"http://127.0.0.1:{server.server_port}/ping"
requests.get(url, headers={"X-Session-Id": "s-requests"}, timeout=10)
httpx.get(url, headers={"X-Session-Id": "s-httpx"}, timeout=10)
server.shutdown()
thread.join(timeout=5)
threadline.shutdown()
print(
    json.dumps(
        {
            "before_request_hooks": len(app.before_request_funcs[None]),
            "teardown_hooks": len(app.teardown_request_funcs[None]),
            "unsupported": unsupported,
            "fastapi_imported": "fastapi" in sys.modules,
        }
    )
)

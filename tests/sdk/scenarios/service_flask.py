"""Scenario service A: a Flask app on werkzeug that calls service B with requests and httpx.

Usage: service_flask.py <service B base URL>. Prints {"port": N} once it accepts requests.
"""

import json
import sys

import flask
import httpx
import requests
from werkzeug.serving import make_server

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
downstream = sys.argv[1]
threadline.configure(service_name="svc-a")
app = flask.Flask(__name__)
threadline.instrument(app)


@app.get("/checkout")
def checkout() -> flask.Response:
    with threadline.journey(user_id=flask.request.headers.get("X-User-Id")):
        seen_downstream = [
            requests.get(f"{downstream}/stock", timeout=10).json(),
            httpx.get(f"{downstream}/stock-sync", timeout=10).json(),
        ]
        return flask.jsonify({"here": current_journey(), "downstream": seen_downstream})


server = make_server("127.0.0.1", 0, app, threaded=True)
print(json.dumps({"port": server.server_port}), flush=True)
server.serve_forever()

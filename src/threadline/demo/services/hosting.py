"""Running one shop service as its own process: tracing on, port bound, clean stop.

Every service is started as ``python -m threadline.demo.services.<name> --port N``.
On SIGTERM (what the orchestrator sends) or SIGINT a service stops taking requests,
finishes the ones in flight, and flushes its spans before the process exits, so a
demo that stops early still stores every span the users caused.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Final

import uvicorn
from fastapi import FastAPI
from flask import Flask
from werkzeug.serving import make_server

import threadline
from threadline import conventions
from threadline.demo.wiring import HEALTH_PATH, ShopWiring

HOST: Final = conventions.DEFAULT_HOST
SERVICE_NAME_ENV: Final = "THREADLINE_SERVICE_NAME"


def parse_port(service_name: str) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m threadline.demo.services.{service_name}",
        description=f"The demo shop's {service_name} service.",
    )
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    return int(parser.parse_args().port)


def configure_tracing(default_service_name: str) -> None:
    """Set up the SDK; the orchestrator's environment names the service and endpoint."""
    threadline.configure(service_name=os.environ.get(SERVICE_NAME_ENV, default_service_name))


def run_web_service(service_name: str, create_app: Callable[[ShopWiring], Flask | FastAPI]) -> None:
    """Run a shop service that is one web app: port from the command line, tracing on,
    the app built from the orchestrator's wiring and instrumented, served until stopped."""
    port = parse_port(service_name)
    configure_tracing(service_name)
    app = create_app(ShopWiring.from_env())
    threadline.instrument(app)
    if isinstance(app, Flask):
        serve_flask(app, port)
    else:
        serve_fastapi(app, port)


def serve_flask(app: Flask, port: int) -> None:
    """Serve a Flask app with werkzeug until SIGTERM/SIGINT, then flush spans."""
    server = make_server(HOST, port, app, threaded=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, and serve_forever() runs on
        # this very thread, underneath the signal handler: ask from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        threadline.shutdown()


def serve_fastapi(app: FastAPI, port: int) -> None:
    """Serve an ASGI app with uvicorn until SIGTERM/SIGINT, then flush spans.

    uvicorn finishes the requests in flight, then raises the signal again; the SDK's
    SIGTERM hook (installed by ``configure``) flushes before the process ends, and
    the ``finally`` covers a stop by SIGINT.
    """
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run()
    finally:
        threadline.shutdown()


def serve_health_in_background(port: int) -> Callable[[], None]:
    """Answer ``GET /health`` for a process without a web app; returns the stopper.

    A plain ``http.server`` is not instrumented, so readiness checks leave no traces.
    """

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == HEALTH_PATH
            body = b'{"status": "ok"}' if found else b'{"error": "not found"}'
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Readiness polls are not worth a log line each."""

    server = ThreadingHTTPServer((HOST, port), Health)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop

"""A two-service shop instrumented with the Threadline SDK, for drill tests.

Run as ``python drill_shop.py payments`` or ``python drill_shop.py checkout <payments
URL>``; each serves on a free 127.0.0.1 port, exports to ``THREADLINE_ENDPOINT`` and
prints ``{"url": ...}`` when ready.

- payments: ``POST /charge`` answers ``{"charged": true}``;
- checkout: ``POST /pay`` calls payments' ``/charge`` inside a CLIENT span naming
  ``peer.service=payments``. ``PUT /propagation`` with body ``off`` makes it stop
  sending the trace context (as a client that lost its instrumentation would), ``on``
  restores it.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.request

import uvicorn
from fastapi import FastAPI, Request
from opentelemetry import propagate, trace

import threadline

STARTUP_TIMEOUT_S = 10.0


def payments_app() -> FastAPI:
    app = FastAPI()

    @app.post("/charge")
    def charge() -> dict[str, bool]:
        return {"charged": True}

    return app


def checkout_app(payments_url: str) -> FastAPI:
    app = FastAPI()
    state = {"propagate": True}
    tracer = trace.get_tracer("drill-shop")

    @app.put("/propagation")
    async def propagation(request: Request) -> dict[str, bool]:
        state["propagate"] = (await request.body()).strip() == b"on"
        return state

    @app.post("/pay")
    def pay() -> dict[str, bool]:
        attributes = {"peer.service": "payments", "http.request.method": "POST"}
        with tracer.start_as_current_span(
            "POST /charge", kind=trace.SpanKind.CLIENT, attributes=attributes
        ):
            headers: dict[str, str] = {}
            if state["propagate"]:
                propagate.inject(headers)
            request = urllib.request.Request(
                f"{payments_url}/charge", data=b"", headers=headers, method="POST"
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                answer.read()
        return {"paid": True}

    return app


def main() -> None:
    role = sys.argv[1]
    threadline.configure(service_name=role)
    app = payments_app() if role == "payments" else checkout_app(sys.argv[2])
    threadline.instrument(app)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    print(json.dumps({"url": f"http://127.0.0.1:{listener.getsockname()[1]}"}), flush=True)
    thread.join()


if __name__ == "__main__":
    main()

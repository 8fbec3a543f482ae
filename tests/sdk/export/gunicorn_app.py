"""A WSGI app for the pre-forking test: configured once in gunicorn's master (``--preload``).

Each request finishes one span named ``forked`` carrying the worker's pid, after a
short pause so concurrent requests spread over the workers.
"""

import json
import os
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse

from opentelemetry import trace

import threadline

threadline.configure(service_name="preforked")
tracer = trace.get_tracer("preforked")


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    with tracer.start_as_current_span("forked", attributes={"worker.pid": os.getpid()}):
        time.sleep(0.2)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"pid": os.getpid()}).encode()]

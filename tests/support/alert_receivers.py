"""Real HTTP receivers of alerts for tests, and the shapes Alertmanager documents.

``Receiver`` is a ``ThreadingHTTPServer`` on a free 127.0.0.1 port that records every
POST (path and JSON body) and can be told to fail the first requests (503 or a
closed port), or to hold requests until released (a slow receiver).

``WEBHOOK_V4`` and ``POSTABLE_ALERTS`` are the payload shapes from Alertmanager's
documentation ("Configuration: webhook_config", and the ``postableAlerts`` definition
of its OpenAPI spec ``api/v2/openapi.yaml``), written as a small JSON-schema subset
that ``check`` validates: type, required keys, no unknown keys, value patterns.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from support.threaded_http import serving_in_thread

WAIT_S: Final = 10.0
RFC3339: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
_STRING_MAP: Final = {"type": "object", "additionalProperties": {"type": "string"}}

# Alertmanager's webhook_config body, version 4.
WEBHOOK_V4: Final[dict[str, Any]] = {
    "type": "object",
    "required": [
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    ],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "string", "pattern": r"^4$"},
        "groupKey": {"type": "string"},
        "truncatedAlerts": {"type": "integer"},
        "status": {"type": "string", "pattern": r"^(firing|resolved)$"},
        "receiver": {"type": "string"},
        "groupLabels": _STRING_MAP,
        "commonLabels": _STRING_MAP,
        "commonAnnotations": _STRING_MAP,
        "externalURL": {"type": "string", "pattern": r"^https?://"},
        "alerts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "status", "labels", "annotations", "startsAt", "endsAt",
                    "generatorURL", "fingerprint",
                ],
                "additionalProperties": False,
                "properties": {
                    "status": {"type": "string", "pattern": r"^(firing|resolved)$"},
                    "labels": _STRING_MAP,
                    "annotations": _STRING_MAP,
                    "startsAt": {"type": "string", "pattern": RFC3339},
                    "endsAt": {"type": "string", "pattern": RFC3339},
                    "generatorURL": {"type": "string"},
                    "fingerprint": {"type": "string", "pattern": r"^[0-9a-f]+$"},
                },
            },
        },
    },
}  # fmt: skip

# Alertmanager API v2 ``postableAlerts``: labels required, the rest optional.
POSTABLE_ALERTS: Final[dict[str, Any]] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": _STRING_MAP,
            "annotations": _STRING_MAP,
            "startsAt": {"type": "string", "pattern": RFC3339},
            "endsAt": {"type": "string", "pattern": RFC3339},
            "generatorURL": {"type": "string"},
        },
    },
}
# Alertmanager's label names (model.LabelName.IsValid, the classic rule).
LABEL_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_TYPES: Final = {"object": dict, "array": list, "string": str, "integer": int}


def check(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Every way ``value`` departs from ``schema`` (empty when it conforms)."""
    problems: list[str] = []
    expected = _TYPES[schema["type"]]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{where}: expected {schema['type']}, got {type(value).__name__}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if expected is dict:
        for key in schema.get("required", ()):
            if key not in value:
                problems.append(f"{where}: missing {key!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                problems += check(item, properties[key], f"{where}.{key}")
            elif extra is False:
                problems.append(f"{where}: unknown key {key!r}")
            elif isinstance(extra, dict):
                problems += check(item, extra, f"{where}.{key}")
    if expected is list:
        for index, item in enumerate(value):
            problems += check(item, schema["items"], f"{where}[{index}]")
    return problems


@dataclass
class Received:
    path: str
    body: Any


@dataclass
class ReceiverState:
    """What the receiver does and what it got; guarded by ``lock``."""

    fail_first: int = 0
    fail_status: int = 503
    hold: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[Received]:
        """The first ``count`` bodies received, waiting up to ``timeout_s`` for them."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout_s)
            return list(self.received)


def _handler(state: ReceiverState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            state.entered.set()
            if state.hold is not None:
                state.hold.wait(WAIT_S)
            with state.lock:
                state.attempts += 1
                failing = state.attempts <= state.fail_first
            if failing:
                self.send_response(state.fail_status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with state.arrived:
                state.received.append(Received(self.path, json.loads(raw)))
                state.arrived.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reports what matters."""

    return Handler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def receiver(
    state: ReceiverState | None = None, *, port: int = 0
) -> Iterator[tuple[str, ReceiverState]]:
    """A receiver serving on 127.0.0.1 (``port`` 0: a free one); yields its URL and state."""
    state = state or ReceiverState()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    server.daemon_threads = True
    with serving_in_thread(server, name="alert-receiver"):
        yield f"http://127.0.0.1:{server.server_address[1]}", state

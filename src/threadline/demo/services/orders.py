"""The orders service (Flask): charges a checkout, then announces the order on the queue.

The gateway calls it on checkout. It asks payments for the charge (through
``requests``) and, once paid, publishes "order.placed" for the fulfillment worker;
the trace context and the journey travel inside the message headers. The orders
placed are kept in memory for the order page (``GET /orders/<id>``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Final

import requests
from flask import Flask, request
from flask.typing import ResponseReturnValue
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import threadline
from threadline.demo.message_hop import MessageQueue, open_queue
from threadline.demo.message_tracing import publish_traced
from threadline.demo.services import hosting
from threadline.demo.wiring import HEALTH_PATH, ShopWiring

SERVICE_NAME: Final = "orders"
# Longer than the slowest simulated charge (0.9 s), far shorter than a user's patience.
PAYMENTS_TIMEOUT_S: Final = 5.0

_tracer = trace.get_tracer("threadline.demo.orders")


def order_id_for(checkout_id: str) -> str:
    """The same checkout always becomes the same order, so a retried checkout is one order."""
    return "ord-" + hashlib.sha256(checkout_id.encode("utf-8")).hexdigest()[:12]


def create_app(wiring: ShopWiring, queue: MessageQueue) -> Flask:
    app = Flask(SERVICE_NAME)
    payments = requests.Session()
    placed: dict[str, dict[str, object]] = {}
    placed_lock = threading.Lock()

    @app.get(HEALTH_PATH)
    def health() -> ResponseReturnValue:
        return {"status": "ok"}

    @app.post("/orders")
    def place_order() -> ResponseReturnValue:
        body: Any = request.get_json(silent=True) or {}
        checkout_id = str(body.get("checkout_id") or "")
        items = list(body.get("items") or [])
        card_token = str(body.get("card_token") or "")
        if not checkout_id or not items or not card_token:
            return {"error": "an order needs a checkout_id, a card_token and items"}, 400
        order_id = order_id_for(checkout_id)
        amount = sum(int(i["price_cents"]) * int(i["quantity"]) for i in items)

        with _tracer.start_as_current_span(
            "charge order", attributes={"order.id": order_id}
        ) as span:
            charge = {"order_id": order_id, "amount_cents": amount, "card_token": card_token}
            failure = _charge(payments, wiring.payments_url, charge)
            if failure:
                # The server span's status description is overwritten by the HTTP
                # instrumentation; this span keeps the reason.
                span.set_status(Status(StatusCode.ERROR, failure))
        if failure:
            return {"error": failure, "order_id": order_id}, 502

        message = {"order_id": order_id, "items": items}
        publish_traced(queue, json.dumps(message).encode("utf-8"))
        answer = {"order_id": order_id, "amount_cents": amount, "status": "placed"}
        with placed_lock:
            placed[order_id] = answer
        return answer, 201

    @app.get("/orders/<order_id>")
    def order(order_id: str) -> ResponseReturnValue:
        with placed_lock:
            found = placed.get(order_id)
        if found is None:
            return {"error": f"no order {order_id}"}, 404
        return found

    return app


def _charge(payments: requests.Session, payments_url: str, charge: dict[str, object]) -> str | None:
    """None when the charge was captured, else why it was not."""
    try:
        response = payments.post(
            f"{payments_url}/charges",
            json=charge,
            timeout=PAYMENTS_TIMEOUT_S,
        )
    except requests.RequestException as exc:
        return f"payments unreachable: {type(exc).__name__}"
    if response.status_code == 201:
        return None
    try:
        reason = str(response.json().get("error", ""))
    except ValueError:
        reason = ""
    return f"payment failed ({response.status_code}): {reason or response.reason}"


def main() -> None:
    port = hosting.parse_port(SERVICE_NAME)
    hosting.configure_tracing(SERVICE_NAME)
    wiring = ShopWiring.from_env()
    queue = open_queue(wiring.broker)
    app = create_app(wiring, queue)
    threadline.instrument(app)
    try:
        hosting.serve_flask(app, port)
    finally:
        queue.close()


if __name__ == "__main__":
    main()

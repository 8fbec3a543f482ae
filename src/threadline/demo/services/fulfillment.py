"""The fulfillment worker: consumes "order.placed" and reserves the order's stock.

It has no web app of its own. Each message is processed in a CONSUMER span that
continues the trace of the checkout which placed the order, so its call to the
catalog (through ``requests``) belongs to the same trace and the same journey.
``--port`` serves only ``/health``, for the orchestrator's readiness check.
"""

from __future__ import annotations

import json
import signal
from types import FrameType
from typing import Any, Final

import requests

import threadline
from threadline.demo.message_hop import open_queue
from threadline.demo.message_tracing import process_traced
from threadline.demo.services import hosting
from threadline.demo.wiring import ShopWiring

SERVICE_NAME: Final = "fulfillment"
CATALOG_TIMEOUT_S: Final = 5.0


class ReservationFailed(RuntimeError):
    """The catalog would not reserve an order's stock."""


def reserve_stock(catalog: requests.Session, catalog_url: str, body: bytes) -> None:
    order: Any = json.loads(body)
    response = catalog.post(
        f"{catalog_url}/stock/reservations",
        json={"order_id": order["order_id"], "items": order["items"]},
        timeout=CATALOG_TIMEOUT_S,
    )
    if response.status_code != 201:
        raise ReservationFailed(
            f"catalog answered {response.status_code} for order {order['order_id']}"
        )


def main() -> None:
    port = hosting.parse_port(SERVICE_NAME)
    hosting.configure_tracing(SERVICE_NAME)
    threadline.instrument()
    wiring = ShopWiring.from_env()
    queue = open_queue(wiring.broker)
    catalog = requests.Session()

    def stop(signum: int, frame: FrameType | None) -> None:
        queue.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stop_health = hosting.serve_health_in_background(port)
    try:
        queue.consume(
            process_traced(queue, lambda body: reserve_stock(catalog, wiring.catalog_url, body))
        )
    finally:
        stop_health()
        queue.close()
        threadline.shutdown()


if __name__ == "__main__":
    main()

"""The catalog service (Flask): lists products, shows one, reserves stock for orders.

Called by the gateway while users browse and add to their cart, and by the
fulfillment worker, on the far side of the message hop, to reserve an order's stock.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Final

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from opentelemetry import trace

from threadline.demo.services import hosting
from threadline.demo.wiring import HEALTH_PATH, ShopWiring

SERVICE_NAME: Final = "catalog"
# Simulated database time per query, so the catalog shows up in "where the time went".
QUERY_TIME_S: Final = (0.003, 0.02)
INITIAL_STOCK: Final = 100_000

_tracer = trace.get_tracer("threadline.demo.catalog")


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    price_cents: int


PRODUCTS: Final[tuple[Product, ...]] = (
    Product("p-100", "Trail running shoes", 12_900),
    Product("p-101", "Merino socks", 1_900),
    Product("p-102", "Rain shell", 18_500),
    Product("p-103", "Headlamp", 3_400),
    Product("p-104", "Water bottle", 1_500),
    Product("p-105", "Day pack", 7_900),
    Product("p-106", "Trekking poles", 9_900),
    Product("p-107", "Sunglasses", 6_500),
)
PRODUCT_IDS: Final[tuple[str, ...]] = tuple(p.id for p in PRODUCTS)
_BY_ID: Final = {p.id: p for p in PRODUCTS}


class Stock:
    """Units on hand per product, shared by the request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._units = dict.fromkeys(PRODUCT_IDS, INITIAL_STOCK)

    def reserve(self, wanted: dict[str, int]) -> bool:
        with self._lock:
            if any(self._units.get(pid, 0) < qty for pid, qty in wanted.items()):
                return False
            for pid, qty in wanted.items():
                self._units[pid] -= qty
            return True


def create_app(wiring: ShopWiring) -> Flask:
    app = Flask(SERVICE_NAME)
    stock = Stock()
    rng = random.Random(f"{wiring.seed}:{SERVICE_NAME}")
    rng_lock = threading.Lock()

    def query(what: str) -> None:
        with rng_lock:
            pause = rng.uniform(*QUERY_TIME_S)
        with _tracer.start_as_current_span(f"query {what}", attributes={"db.system": "memory"}):
            time.sleep(pause)

    @app.get(HEALTH_PATH)
    def health() -> ResponseReturnValue:
        return {"status": "ok"}

    @app.get("/products")
    def list_products() -> ResponseReturnValue:
        query("products")
        return {"products": [asdict(p) for p in PRODUCTS]}

    @app.get("/products/<product_id>")
    def show_product(product_id: str) -> ResponseReturnValue:
        query("product")
        product = _BY_ID.get(product_id)
        if product is None:
            return {"error": f"no product {product_id!r}"}, 404
        return asdict(product)

    @app.post("/stock/reservations")
    def reserve_stock() -> ResponseReturnValue:
        body: Any = request.get_json(silent=True) or {}
        wanted: dict[str, int] = {}
        try:
            for item in body.get("items") or []:
                product_id = str(item["product_id"])
                wanted[product_id] = wanted.get(product_id, 0) + int(item["quantity"])
        except (KeyError, TypeError, ValueError):
            return {"error": "items must be a list of {product_id, quantity}"}, 400
        unknown = sorted(set(wanted) - set(_BY_ID))
        if unknown:
            return {"error": f"unknown products {unknown}"}, 400
        query("stock")
        if not stock.reserve(wanted):
            return {"error": "not enough stock"}, 409
        return jsonify({"order_id": body.get("order_id"), "reserved": wanted}), 201

    return app


def main() -> None:
    hosting.run_web_service(SERVICE_NAME, create_app)


if __name__ == "__main__":
    main()

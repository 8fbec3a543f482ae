"""The gateway (FastAPI): the shop's front door, where every user request arrives.

A simulated user sends ``X-Session-Id`` (from which the SDK starts the journey) and
``X-User``, which the gateway adds to the journey so every span downstream, in every
service, carries both, and ``X-Plan``, which it stamps on its own (entry) span as
``app.plan`` so journey maps and funnels can be filtered by plan. Browsing and the
cart call the catalog, checkout and the order page call orders; both through an
``httpx.AsyncClient``. A checkout that fails puts the cart back, so the user can pay
with another card.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, Field

import threadline
from threadline.demo.services import hosting
from threadline.demo.shopper_script import PLAN_ATTRIBUTE
from threadline.demo.wiring import (
    HEALTH_PATH,
    PLAN_HEADER,
    SESSION_HEADER,
    USER_HEADER,
    ShopWiring,
)

SERVICE_NAME: Final = "gateway"
# Covers the slowest charge (0.9 s) behind orders with room to spare.
DOWNSTREAM_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: str
    quantity: int
    price_cents: int


class CheckoutRequest(BaseModel):
    card_token: str = Field(min_length=1, max_length=64)


class CartAddition(BaseModel):
    product_id: str
    quantity: int = Field(default=1, ge=1, le=10)


class Carts:
    """Open carts by session id, and how many checkouts each session has made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, list[CartLine]] = {}
        self._checkouts: dict[str, int] = {}

    def add(self, session_id: str, line: CartLine) -> list[CartLine]:
        with self._lock:
            lines = self._lines.setdefault(session_id, [])
            lines.append(line)
            return list(lines)

    def put_back(self, session_id: str, lines: list[CartLine]) -> None:
        """A checkout that failed leaves the cart as it was, for the next attempt."""
        with self._lock:
            self._lines.setdefault(session_id, [])[:0] = lines

    def take(self, session_id: str) -> tuple[list[CartLine], str]:
        """Empty the session's cart; returns its lines and a checkout id unique to it."""
        with self._lock:
            lines = self._lines.pop(session_id, [])
            number = self._checkouts.get(session_id, 0) + 1
            self._checkouts[session_id] = number
            return lines, f"{session_id}:{number}"


def _stamp_plan(request: Request) -> None:
    """Put the user's plan on the gateway's server span: the step's entry span."""
    plan = request.headers.get(PLAN_HEADER)
    if plan:
        trace.get_current_span().set_attribute(PLAN_ATTRIBUTE, plan)


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def create_app(wiring: ShopWiring) -> FastAPI:
    carts = Carts()
    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clients["http"] = httpx.AsyncClient(timeout=DOWNSTREAM_TIMEOUT_S)
        yield
        await clients["http"].aclose()

    app = FastAPI(title="gateway", lifespan=lifespan)

    async def call(method: str, url: str, body: Any = None) -> httpx.Response | JSONResponse:
        try:
            return await clients["http"].request(method, url, json=body)
        except httpx.HTTPError as exc:
            return _error(502, f"{url} unreachable: {type(exc).__name__}")

    async def relay_catalog(path: str, request: Request) -> JSONResponse:
        """The catalog's answer to ``GET path``, passed on as it is, in the user's journey."""
        _stamp_plan(request)
        with threadline.journey(user_id=request.headers.get(USER_HEADER)):
            answer = await call("GET", f"{wiring.catalog_url}{path}")
            if isinstance(answer, JSONResponse):
                return answer
            return JSONResponse(answer.json(), status_code=answer.status_code)

    @app.get(HEALTH_PATH)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/browse", response_model=None)
    async def browse(request: Request) -> Any:
        return await relay_catalog("/products", request)

    @app.get("/products/{product_id}", response_model=None)
    async def product(product_id: str, request: Request) -> Any:
        return await relay_catalog(f"/products/{product_id}", request)

    @app.post("/cart", response_model=None)
    async def add_to_cart(addition: CartAddition, request: Request) -> Any:
        _stamp_plan(request)
        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            return _error(400, f"a cart needs a {SESSION_HEADER} header")
        with threadline.journey(user_id=request.headers.get(USER_HEADER)):
            answer = await call("GET", f"{wiring.catalog_url}/products/{addition.product_id}")
            if isinstance(answer, JSONResponse):
                return answer
            if answer.status_code != 200:
                return JSONResponse(answer.json(), status_code=answer.status_code)
            line = CartLine(addition.product_id, addition.quantity, answer.json()["price_cents"])
            lines = carts.add(session_id, line)
            return JSONResponse({"cart": [asdict(x) for x in lines]}, status_code=201)

    @app.post("/checkout", response_model=None)
    async def checkout(payment: CheckoutRequest, request: Request) -> Any:
        _stamp_plan(request)
        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            return _error(400, f"checkout needs a {SESSION_HEADER} header")
        user_id = request.headers.get(USER_HEADER)
        with threadline.journey(user_id=user_id):
            lines, checkout_id = carts.take(session_id)
            if not lines:
                return _error(400, "the cart is empty")
            order = {
                "checkout_id": checkout_id,
                "user": user_id,
                "card_token": payment.card_token,
                "items": [asdict(x) for x in lines],
            }
            answer = await call("POST", f"{wiring.orders_url}/orders", order)
            if isinstance(answer, JSONResponse):
                carts.put_back(session_id, lines)
                return answer
            if answer.status_code != 201:
                carts.put_back(session_id, lines)
                reason = answer.json().get("error", answer.reason_phrase)
                return _error(502, f"checkout failed: {reason}")
            return JSONResponse(answer.json(), status_code=201)

    @app.get("/orders/{order_id}", response_model=None)
    async def order_page(order_id: str, request: Request) -> Any:
        """The order's status, as orders has it: the page a user looks at after paying."""
        _stamp_plan(request)
        with threadline.journey(user_id=request.headers.get(USER_HEADER)):
            answer = await call("GET", f"{wiring.orders_url}/orders/{quote(order_id, safe='')}")
            if isinstance(answer, JSONResponse):
                return answer
            return JSONResponse(answer.json(), status_code=answer.status_code)

    return app


def main() -> None:
    hosting.run_web_service(SERVICE_NAME, create_app)


if __name__ == "__main__":
    main()

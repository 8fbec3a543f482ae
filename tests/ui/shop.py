"""Spans of a small shop, as its services would send them, for the UI tests.

Simulated users browse products, open one (the catalog asks ``inventory``, whose
``legacy-warehouse`` dependency is slow), add it to the cart and check out through
``orders`` and ``payments``; an order is handed to ``fulfillment`` over a message
queue. Some charges fail (``card declined``), and some of those users stop there.

Besides the random sessions, a few traces have fixed ids so tests can open them:

- ``FAILED_CHECKOUT``: a checkout whose charge failed, in session ``SESSION``;
- ``SKEWED``: the payments host's clock runs 80 ms behind, so its span starts before
  the call that caused it;
- ``HOSTILE``: names, attribute keys and values, an event and a session id that
  carry HTML/script payloads;
- ``WIDE``: one trace of ``WIDE_SPANS`` spans (a batch job), to check that the
  waterfall renders only the rows in view.

Times are relative to ``now_ns`` (the last half hour), so windows such as "last
hour" hold the data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from threadline.server.model import SpanEvent, SpanKind, SpanLink, SpanRecord, StatusCode

MS: Final = 1_000_000
SECOND: Final = 1000 * MS

SESSION: Final = "sess-ada-0001"
USER: Final = "user-ada"
FAILED_CHECKOUT: Final = "c0ffee00" * 4
SKEWED: Final = "5ce3ed00" * 4
HOSTILE: Final = "bad0bad0" * 4
WIDE: Final = "3ide0000".replace("i", "1") * 4
WIDE_SPANS: Final = 2000

SCRIPT_PAYLOAD: Final = "<script>alert(1)</script>"
IMG_PAYLOAD: Final = '"><img src=x onerror=alert(1)>'
HOSTILE_SESSION: Final = f"sess{IMG_PAYLOAD}"

SERVICES: Final = (
    "web",
    "catalog",
    "inventory",
    "cart",
    "orders",
    "payments",
    "fulfillment",
)


def _resource(service: str) -> dict[str, object]:
    return {
        "service.name": service,
        "service.version": "1.4.2",
        "deployment.environment": "staging",
        "host.name": f"{service}-7d9f8-x2k4q",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.45.1",
    }


_SCOPES: Final = {
    SpanKind.SERVER: "opentelemetry.instrumentation.flask",
    SpanKind.CLIENT: "opentelemetry.instrumentation.requests",
}


@dataclass
class TraceBuilder:
    """Builds the spans of one trace; ids are deterministic from the random source."""

    trace_id: str
    rng: random.Random
    session_id: str | None
    user_id: str | None
    spans: list[SpanRecord] = field(default_factory=list)

    def span_id(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def add(
        self,
        service: str,
        name: str,
        kind: SpanKind,
        start_ns: int,
        duration_ns: int,
        parent: SpanRecord | None,
        *,
        attributes: dict[str, object] | None = None,
        status: StatusCode = StatusCode.UNSET,
        status_message: str = "",
        events: tuple[SpanEvent, ...] = (),
        links: tuple[SpanLink, ...] = (),
        span_id: str | None = None,
    ) -> SpanRecord:
        attrs: dict[str, object] = dict(attributes or {})
        if self.session_id:
            attrs["session.id"] = self.session_id
        if self.user_id:
            attrs["user.id"] = self.user_id
        record = SpanRecord(
            trace_id=self.trace_id,
            span_id=span_id or self.span_id(),
            parent_span_id=parent.span_id if parent else None,
            service_name=service,
            name=name,
            kind=kind,
            start_ns=start_ns,
            end_ns=start_ns + duration_ns,
            status=status,
            status_message=status_message,
            session_id=self.session_id,
            user_id=self.user_id,
            attributes=attrs,
            resource=_resource(service),
            events=events,
            links=links,
            scope_name=_SCOPES.get(kind, "shop"),
        )
        self.spans.append(record)
        return record

    def web_request(
        self,
        method: str,
        route: str,
        status_code: int,
        start_ns: int,
        duration_ns: int,
        *,
        attributes: dict[str, object] | None = None,
        status: StatusCode = StatusCode.UNSET,
        status_message: str = "",
    ) -> SpanRecord:
        """The root SERVER span of a request into the web front end."""
        http = {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status_code,
        }
        return self.add(
            "web",
            f"{method} {route}",
            SpanKind.SERVER,
            start_ns,
            duration_ns,
            None,
            attributes={**http, **(attributes or {})},
            status=status,
            status_message=status_message,
        )

    def http_call(
        self,
        caller: SpanRecord,
        callee: str,
        method: str,
        route: str,
        start_ns: int,
        duration_ns: int,
        *,
        status_code: int = 200,
        skew_ns: int = 0,
    ) -> tuple[SpanRecord, SpanRecord]:
        """A CLIENT span in the caller and the SERVER span it causes in ``callee``."""
        failed = status_code >= 500
        client = self.add(
            caller.service_name,
            f"{method} {callee}",
            SpanKind.CLIENT,
            start_ns,
            duration_ns,
            caller,
            attributes={
                "http.request.method": method,
                "server.address": callee,
                "url.full": f"http://{callee}:8080{route}",
                "http.response.status_code": status_code,
            },
            status=StatusCode.ERROR if failed else StatusCode.UNSET,
        )
        server = self.add(
            callee,
            f"{method} {route}",
            SpanKind.SERVER,
            start_ns + MS + skew_ns,
            max(MS, duration_ns - 2 * MS),
            client,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": route,
                "http.response.status_code": status_code,
            },
            status=StatusCode.ERROR if failed else StatusCode.UNSET,
        )
        return client, server

    def db(
        self, parent: SpanRecord, name: str, statement: str, start_ns: int, duration_ns: int
    ) -> SpanRecord:
        return self.add(
            parent.service_name,
            name,
            SpanKind.CLIENT,
            start_ns,
            duration_ns,
            parent,
            attributes={"db.system": "postgresql", "db.statement": statement},
        )


class Shop:
    """Generates the traces of simulated sessions, deterministically from ``seed``."""

    def __init__(self, now_ns: int, seed: int = 7) -> None:
        self.now_ns = now_ns
        self.rng = random.Random(seed)

    def trace_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def builder(self, trace_id: str | None, session: str | None, user: str | None) -> TraceBuilder:
        return TraceBuilder(trace_id or self.trace_id(), self.rng, session, user)

    def browse(self, t: int, session: str, user: str) -> list[SpanRecord]:
        b = self.builder(None, session, user)
        total = self.rng.randint(25, 60) * MS
        root = b.web_request("GET", "/products", 200, t, total)
        _, items = b.http_call(root, "catalog", "GET", "/items", t + 3 * MS, total - 8 * MS)
        b.db(
            items, "SELECT items", "SELECT id, name, price FROM items", t + 6 * MS, total - 16 * MS
        )
        return b.spans

    def product(self, t: int, session: str, user: str) -> list[SpanRecord]:
        b = self.builder(None, session, user)
        slow = self.rng.random() < 0.3
        warehouse = (self.rng.randint(600, 1400) if slow else self.rng.randint(20, 60)) * MS
        total = warehouse + self.rng.randint(30, 50) * MS
        item = self.rng.randint(1, 40)
        root = b.web_request(
            "GET", "/products/{id}", 200, t, total, attributes={"product.id": item}
        )
        _, details = b.http_call(root, "catalog", "GET", "/items/{id}", t + 2 * MS, total - 4 * MS)
        b.db(details, "SELECT items", "SELECT * FROM items WHERE id = $1", t + 5 * MS, 6 * MS)
        _, stock = b.http_call(
            details, "inventory", "GET", "/stock/{id}", t + 13 * MS, warehouse + 12 * MS
        )
        b.add(
            "inventory",
            "GET legacy-warehouse",
            SpanKind.CLIENT,
            t + 17 * MS,
            warehouse,
            stock,
            attributes={
                "server.address": "legacy-warehouse.internal",
                "http.request.method": "GET",
                "warehouse.region": "eu-west" if slow else "eu-central",
            },
        )
        return b.spans

    def add_to_cart(self, t: int, session: str, user: str) -> list[SpanRecord]:
        b = self.builder(None, session, user)
        total = self.rng.randint(30, 70) * MS
        root = b.web_request("POST", "/cart", 201, t, total)
        _, cart = b.http_call(
            root, "cart", "POST", "/cart/items", t + 2 * MS, total - 5 * MS, status_code=201
        )
        b.add(
            "cart",
            "SET cart",
            SpanKind.CLIENT,
            t + 6 * MS,
            3 * MS,
            cart,
            attributes={"db.system": "redis", "db.operation.name": "SET"},
        )
        return b.spans

    def checkout(
        self,
        t: int,
        session: str,
        user: str,
        *,
        declined: bool,
        trace_id: str | None = None,
        skew_ns: int = 0,
    ) -> list[SpanRecord]:
        b = self.builder(trace_id, session, user)
        charge = self.rng.randint(120, 380) * MS
        total = charge + 60 * MS
        code = 502 if declined else 200
        status = StatusCode.ERROR if declined else StatusCode.UNSET
        root = b.web_request(
            "POST",
            "/checkout",
            code,
            t,
            total,
            status=status,
            status_message="payment failed" if declined else "",
        )
        _, order = b.http_call(
            root, "orders", "POST", "/orders", t + 3 * MS, total - 6 * MS, status_code=code
        )
        b.db(order, "INSERT orders", "INSERT INTO orders VALUES ($1, $2, $3)", t + 6 * MS, 9 * MS)
        _, pay = b.http_call(
            order,
            "payments",
            "POST",
            "/charge",
            t + 18 * MS,
            charge,
            status_code=code,
            skew_ns=skew_ns,
        )
        if declined:
            b.add(
                "payments",
                "authorize card",
                SpanKind.CLIENT,
                pay.start_ns + 4 * MS,
                charge - 12 * MS,
                pay,
                status=StatusCode.ERROR,
                status_message="card declined: insufficient funds",
                attributes={
                    "payment.provider": "acme-pay",
                    "payment.amount": 42.5,
                    "payment.outcome": "declined by issuer",
                },
                events=(
                    SpanEvent(
                        "exception",
                        pay.start_ns + charge - 9 * MS,
                        {
                            "exception.type": "CardDeclined",
                            "exception.message": "card declined: insufficient funds",
                            "exception.stacktrace": "Traceback (most recent call last):\n"
                            '  File "payments/charge.py", line 88, in authorize\n'
                            "    raise CardDeclined(reply.reason)\n"
                            "CardDeclined: card declined: insufficient funds",
                        },
                    ),
                ),
            )
            return b.spans
        b.add(
            "payments",
            "authorize card",
            SpanKind.CLIENT,
            pay.start_ns + 4 * MS,
            charge - 12 * MS,
            pay,
            attributes={"payment.provider": "acme-pay", "payment.amount": 42.5},
        )
        publish_at = t + 18 * MS + charge + 4 * MS
        publish = b.add(
            "orders",
            "publish orders.placed",
            SpanKind.PRODUCER,
            publish_at,
            3 * MS,
            order,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": "orders.placed",
                "messaging.operation.type": "publish",
            },
        )
        b.add(
            "fulfillment",
            "process orders.placed",
            SpanKind.CONSUMER,
            publish_at + 40 * MS,
            self.rng.randint(30, 90) * MS,
            publish,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": "orders.placed",
                "messaging.operation.type": "process",
            },
            links=(SpanLink(b.trace_id, publish.span_id, {"messaging.message.id": "m-1"}),),
        )
        return b.spans

    def session(self, start_ns: int, session: str, user: str) -> Iterator[list[SpanRecord]]:
        t = start_ns
        yield self.browse(t, session, user)
        for _ in range(self.rng.randint(1, 3)):
            t += self.rng.randint(2, 9) * SECOND
            yield self.product(t, session, user)
        t += self.rng.randint(3, 12) * SECOND
        yield self.add_to_cart(t, session, user)
        t += self.rng.randint(5, 20) * SECOND
        declined = self.rng.random() < 0.3
        yield self.checkout(t, session, user, declined=declined)
        if declined and self.rng.random() < 0.5:
            t += self.rng.randint(5, 15) * SECOND
            yield self.checkout(t, session, user, declined=False)

    def traces(self, sessions: int = 24) -> list[list[SpanRecord]]:
        """The random sessions plus the fixed traces described in the module docstring."""
        traces: list[list[SpanRecord]] = []
        span_of_time = 25 * 60 * SECOND
        for number in range(sessions):
            start = self.now_ns - 30 * 60 * SECOND + number * span_of_time // sessions
            traces.extend(self.session(start, f"sess-{number:04d}", f"user-{number % 9}"))
        # Session SESSION: browse, add to cart, then a checkout that fails; the user stops.
        ada = self.now_ns - 4 * 60 * SECOND
        traces.append(self.browse(ada, SESSION, USER))
        traces.append(self.add_to_cart(ada + 6 * SECOND, SESSION, USER))
        traces.append(
            self.checkout(ada + 15 * SECOND, SESSION, USER, declined=True, trace_id=FAILED_CHECKOUT)
        )
        traces.append(
            self.checkout(
                self.now_ns - 3 * 60 * SECOND,
                "sess-skew",
                "user-skew",
                declined=False,
                trace_id=SKEWED,
                skew_ns=-80 * MS,
            )
        )
        traces.append(self.hostile(self.now_ns - 2 * 60 * SECOND))
        traces.append(self.wide(self.now_ns - 10 * 60 * SECOND))
        return traces

    def hostile(self, t: int) -> list[SpanRecord]:
        b = self.builder(HOSTILE, HOSTILE_SESSION, SCRIPT_PAYLOAD)
        root = b.add(
            "web",
            f"GET /search {IMG_PAYLOAD}",
            SpanKind.SERVER,
            t,
            40 * MS,
            None,
            attributes={
                "http.route": "/search",
                "search.query": SCRIPT_PAYLOAD,
                "referer": IMG_PAYLOAD,
                IMG_PAYLOAD: "key with markup",
            },
            status=StatusCode.ERROR,
            status_message=SCRIPT_PAYLOAD,
            events=(SpanEvent(SCRIPT_PAYLOAD, t + 5 * MS, {"detail": IMG_PAYLOAD}),),
            links=(SpanLink(IMG_PAYLOAD, SCRIPT_PAYLOAD, {}),),
        )
        b.add(
            SCRIPT_PAYLOAD,
            SCRIPT_PAYLOAD,
            SpanKind.INTERNAL,
            t + 5 * MS,
            20 * MS,
            root,
            attributes={"payload": SCRIPT_PAYLOAD, "html": IMG_PAYLOAD},
        )
        return b.spans

    def wide(self, t: int) -> list[SpanRecord]:
        """A batch job: one root, a few stages, and many small item spans under each."""
        b = self.builder(WIDE, None, None)
        total = 12 * SECOND
        root = b.add("fulfillment", "nightly reconcile", SpanKind.INTERNAL, t, total, None)
        stages = 20
        per_stage = (WIDE_SPANS - 1 - stages) // stages
        for s in range(stages):
            stage_start = t + s * (total // stages)
            stage = b.add(
                "fulfillment",
                f"reconcile batch {s}",
                SpanKind.INTERNAL,
                stage_start,
                total // stages - MS,
                root,
            )
            for k in range(per_stage):
                b.add(
                    "fulfillment",
                    "SELECT order",
                    SpanKind.CLIENT,
                    stage_start + k * (total // stages // per_stage),
                    2 * MS,
                    stage,
                    attributes={"db.system": "postgresql", "order.index": k},
                )
        while len(b.spans) < WIDE_SPANS:
            b.add("fulfillment", "audit", SpanKind.INTERNAL, t + total - 5 * MS, MS, root)
        return b.spans

"""A synthetic shop's spans for the analysis benchmark, built straight into span batches.

Twelve services behind a gateway, four routes of ~14–25 spans each (CLIENT→SERVER
hops with a database call inside each server span, and an ORDER → notifications
message hop), journeys of a few traces per session. What the aggregates should
find is planted on purpose:

- checkouts paid through ``payment.provider=slowpay`` are ~300 ms slower, the
  time spent in the payments service's call to the provider;
- ``inventory-2`` (a ``host.name`` resource attribute) fails one reservation in ten;
- 3% of messages start a new trace in notifications, 2% of shipping calls lose
  their parent: propagation breaks the health report should find.

Rows are appended to column lists (no ``SpanRecord`` per span): generating a
million spans this way takes seconds rather than a minute.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from threadline.server.batch import COLUMNS, SpanBatch, dumps

MS: Final = 1_000_000
SERVICES: Final = (
    "gateway",
    "auth",
    "users",
    "catalog",
    "search",
    "cart",
    "pricing",
    "inventory",
    "orders",
    "payments",
    "notifications",
    "shipping",
)
PROVIDERS: Final = ("fastpay", "okpay", "slowpay")
TIERS: Final = ("free", "plus", "pro")
HOSTS_PER_SERVICE: Final = 3
# Route, its share of traffic, and the services the gateway calls for it, in order.
ROUTES: Final[tuple[tuple[str, float, tuple[str, ...]], ...]] = (
    ("GET /products", 0.40, ("auth", "catalog", "search", "pricing", "inventory", "users")),
    ("POST /cart", 0.25, ("auth", "cart", "inventory", "pricing", "users")),
    ("POST /checkout", 0.20, ("auth", "users", "cart", "orders")),
    ("GET /account", 0.15, ("auth", "users", "orders", "shipping")),
)
OPERATION: Final[dict[str, str]] = {
    "auth": "verify token",
    "users": "load profile",
    "catalog": "list products",
    "search": "search",
    "cart": "update cart",
    "pricing": "quote",
    "inventory": "reserve stock",
    "orders": "create order",
    "payments": "charge",
    "shipping": "quote shipping",
    "notifications": "send confirmation",
}


@dataclass(slots=True)
class _Columns:
    """Span rows under construction, one list per ``SPAN_SCHEMA`` column."""

    lists: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in COLUMNS})

    def __len__(self) -> int:
        return len(self.lists["trace_id"])

    def add(self, **row: Any) -> None:
        for column in COLUMNS:
            self.lists[column].append(row.get(column, _DEFAULTS.get(column)))

    def take(self) -> SpanBatch:
        batch = SpanBatch.from_columns(self.lists)
        self.lists = {c: [] for c in COLUMNS}
        return batch


_DEFAULTS: Final[dict[str, Any]] = {
    "status": "unset",
    "status_message": "",
    "attributes": "{}",
    "events": "[]",
    "links": "[]",
    "scope_name": "bench",
}


@dataclass(slots=True)
class _Trace:
    """One trace being built: its id, journey keys and the rows it adds."""

    rng: random.Random
    columns: _Columns
    trace_id: str
    session_id: str
    user_id: str
    spans: int = 0

    def span(
        self,
        service: str,
        name: str,
        kind: str,
        parent: str | None,
        start_ns: int,
        duration_ns: int,
        *,
        attributes: dict[str, Any] | None = None,
        error: str | None = None,
        trace_id: str | None = None,
        host: str | None = None,
    ) -> str:
        span_id = f"{self.rng.getrandbits(64):016x}"
        host = host or f"{service}-{self.rng.randrange(HOSTS_PER_SERVICE)}"
        self.columns.add(
            trace_id=trace_id or self.trace_id,
            span_id=span_id,
            parent_span_id=parent,
            service_name=service,
            name=name,
            kind=kind,
            start_ns=start_ns,
            end_ns=start_ns + duration_ns,
            duration_ns=duration_ns,
            status="error" if error else "unset",
            status_message=error or "",
            session_id=self.session_id,
            user_id=self.user_id,
            attributes=dumps(attributes or {}),
            resource=_resource(service, host),
        )
        self.spans += 1
        return span_id


_RESOURCES: Final[dict[tuple[str, str], str]] = {}


def _resource(service: str, host: str) -> str:
    key = (service, host)
    if key not in _RESOURCES:
        _RESOURCES[key] = dumps(
            {
                "service.name": service,
                "host.name": host,
                "service.version": "2.3.1",
                "deployment.environment": "production",
            }
        )
    return _RESOURCES[key]


def _lognormal_ms(rng: random.Random, median_ms: float) -> int:
    return int(rng.lognormvariate(0.0, 0.35) * median_ms * MS)


def _hop(
    trace: _Trace,
    caller: str,
    callee: str,
    parent: str,
    start_ns: int,
    *,
    attributes: dict[str, Any] | None = None,
    failing_host: tuple[str, float, str] | None = None,
    detached: bool = False,
    inner: Callable[[str, int], tuple[int, str | None]] | None = None,
) -> tuple[int, str | None]:
    """A CLIENT span in ``caller``, the SERVER span in ``callee`` and its database call.

    ``inner(server_span_id, at_ns)`` adds the callee's own downstream work after the
    database call and returns its duration and any failure. ``failing_host`` is
    (host, failure rate, message): calls served by that host fail at that rate.
    Returns the client span's duration and the failure. ``detached`` loses the
    trace context: the server span starts a trace of its own, as an uninstrumented
    proxy would make it.
    """
    rng = trace.rng
    operation = OPERATION[callee]
    host = f"{callee}-{rng.randrange(HOSTS_PER_SERVICE)}"
    error = None
    if failing_host is not None and host == failing_host[0] and rng.random() < failing_host[1]:
        error = failing_host[2]
    lists = trace.columns.lists
    client = trace.span(caller, f"POST {callee}", "client", parent, start_ns, 0)
    client_row = len(trace.columns) - 1
    server_start = start_ns + _lognormal_ms(rng, 1) // 2
    server_trace = f"{rng.getrandbits(128):032x}" if detached else None
    server = trace.span(
        callee,
        operation,
        "server",
        None if detached else client,
        server_start,
        0,
        attributes={
            "http.route": f"/{callee}/{operation.replace(' ', '-')}",
            "http.request.method": "POST",
            **(attributes or {}),
        },
        trace_id=server_trace,
        host=host,
    )
    server_row = len(trace.columns) - 1
    db_start = server_start + _lognormal_ms(rng, 1)
    db_ns = _lognormal_ms(rng, 3)
    trace.span(
        callee,
        "SELECT",
        "client",
        server,
        db_start,
        db_ns,
        attributes={"db.system": "postgresql"},
        trace_id=server_trace,
        host=host,
    )
    at = db_start + db_ns
    failure = error
    if inner is not None:
        spent, failure = inner(server, at)
        failure = failure or error
        at += spent
    server_end = at + _lognormal_ms(rng, 2)
    client_end = server_end + _lognormal_ms(rng, 1) // 2
    status_code = 500 if failure else 200
    lists["attributes"][server_row] = lists["attributes"][server_row][:-1] + (
        f',"http.response.status_code":{status_code}}}'
    )
    for row, begin, end in (
        (client_row, start_ns, client_end),
        (server_row, server_start, server_end),
    ):
        lists["end_ns"][row] = end
        lists["duration_ns"][row] = end - begin
        if failure:
            lists["status"][row] = "error"
            lists["status_message"][row] = failure
    return client_end - start_ns, failure


def _payments(
    trace: _Trace, provider: str, declined: bool
) -> Callable[[str, int], tuple[int, str | None]]:
    """The payments server's call to the payment provider (slowpay is ~300 ms slower)."""

    def call_provider(server: str, at: int) -> tuple[int, str | None]:
        rng = trace.rng
        provider_ns = _lognormal_ms(rng, 40) + (300 * MS if provider == "slowpay" else 0)
        trace.span(
            "payments",
            f"POST {provider}",
            "client",
            server,
            at,
            provider_ns,
            attributes={"server.address": f"api.{provider}.example"},
            error="card declined" if declined else None,
        )
        return provider_ns, "card declined" if declined else None

    return call_provider


def _orders(trace: _Trace) -> Callable[[str, int], tuple[int, str | None]]:
    """The orders server's charge through payments, then the confirmation message."""

    def create_order(server: str, at: int) -> tuple[int, str | None]:
        rng = trace.rng
        provider = rng.choice(PROVIDERS)
        declined = rng.random() < 0.02
        charge_ns, failure = _hop(
            trace,
            "orders",
            "payments",
            server,
            at,
            attributes={"payment.provider": provider},
            inner=_payments(trace, provider, declined),
        )
        if failure:
            return charge_ns, failure
        produce_start = at + charge_ns
        message_id = f"msg-{rng.getrandbits(48):012x}"
        messaging = {
            "messaging.system": "rabbitmq",
            "messaging.destination.name": "orders",
            "messaging.message.id": message_id,
        }
        producer = trace.span(
            "orders", "orders publish", "producer", server, produce_start, MS, attributes=messaging
        )
        broken = rng.random() < 0.03
        consume_start = produce_start + MS + _lognormal_ms(rng, 15)
        consumer_trace = f"{rng.getrandbits(128):032x}" if broken else None
        consumer = trace.span(
            "notifications",
            "orders process",
            "consumer",
            None if broken else producer,
            consume_start,
            _lognormal_ms(rng, 12),
            attributes=messaging,
            trace_id=consumer_trace,
        )
        trace.span(
            "notifications",
            "render email",
            "internal",
            consumer,
            consume_start + MS,
            4 * MS,
            trace_id=consumer_trace,
        )
        return charge_ns + MS, None

    return create_order


def _build_trace(trace: _Trace, route: str, callees: tuple[str, ...], start_ns: int) -> None:
    rng = trace.rng
    root = trace.span("gateway", route, "server", None, start_ns, 0)  # duration set below
    root_row = len(trace.columns) - 1
    trace.span("gateway", "authorize", "internal", root, start_ns + MS // 2, MS)
    cursor = start_ns + 2 * MS
    failure: str | None = None
    for callee in callees:
        spent, error = _hop(
            trace,
            "gateway",
            callee,
            root,
            cursor,
            failing_host=("inventory-2", 0.1, "stock service unavailable"),
            detached=callee == "shipping" and rng.random() < 0.02,
            inner=_orders(trace) if route == "POST /checkout" and callee == "orders" else None,
        )
        cursor += spent
        failure = failure or error
    duration = cursor - start_ns + MS
    lists = trace.columns.lists
    lists["end_ns"][root_row] = start_ns + duration
    lists["duration_ns"][root_row] = duration
    lists["attributes"][root_row] = dumps(
        {
            "http.route": route,
            "http.response.status_code": 500 if failure else 200,
            "user.tier": rng.choice(TIERS),
        }
    )
    if failure:
        lists["status"][root_row] = "error"
        lists["status_message"][root_row] = failure


def generate(
    total_spans: int,
    *,
    end_ns: int,
    window_ns: int,
    sessions: int,
    batch_spans: int,
    seed: int = 11,
) -> Iterator[SpanBatch]:
    """About ``total_spans`` spans in batches of ~``batch_spans``, in the window before the end."""
    rng = random.Random(seed)
    columns = _Columns()
    routes = [r[0] for r in ROUTES]
    weights = [r[1] for r in ROUTES]
    callees = {r[0]: r[2] for r in ROUTES}
    made = 0
    while made < total_spans:
        session = rng.randrange(sessions)
        trace = _Trace(
            rng=rng,
            columns=columns,
            trace_id=f"{rng.getrandbits(128):032x}",
            session_id=f"session-{session:05d}",
            user_id=f"user-{session % (sessions // 2 or 1):05d}",
        )
        route = rng.choices(routes, weights)[0]
        start = end_ns - window_ns + rng.randrange(window_ns - 5_000 * MS)
        _build_trace(trace, route, callees[route], start)
        made += trace.spans
        if len(columns) >= batch_spans:
            yield columns.take()
    if len(columns):
        yield columns.take()

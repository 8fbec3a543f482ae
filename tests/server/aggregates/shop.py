"""A generated shop whose aggregates the tests know because they compute them themselves.

Every trace enters at the gateway. ``POST /checkout`` calls payments (which calls
its provider) and inventory, then publishes an order message that notifications
consumes; ``GET /products`` calls catalog. Planted on purpose:

- ``payment.provider=slowpay`` makes the provider call ~250 ms slower;
- inventory on ``host.name=inventory-2`` (a resource attribute) fails half its calls;
- one order message is consumed in a new trace without a link (``BROKEN_HOP``),
  one in a new trace that links to its producer (``LINKED_HOP``);
- one inventory call arrives without its parent, in a trace of its own
  (``DETACHED``); one catalog span names a parent that never arrived (``ORPHAN``).

Pairs of traces start at the same instant, so sort orders need their tie-breaker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Final

from threadline.server.model import SpanKind, SpanLink, SpanRecord, StatusCode

BASE: Final = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MS: Final = 1_000_000
S: Final = 1_000_000_000
TRACES: Final = 240
BROKEN_HOP: Final = 7  # index of the checkout whose message lost its context
LINKED_HOP: Final = 10
DETACHED: Final = 13
ORPHAN: Final = 5  # a products trace whose catalog span lost its parent
WINDOW_START: Final = BASE - 60 * S
WINDOW_END: Final = BASE + 600 * S


@dataclass(slots=True)
class Shop:
    spans: list[SpanRecord] = field(default_factory=list)
    checkout_ids: list[str] = field(default_factory=list)
    slowpay_ids: set[str] = field(default_factory=set)
    broken_hop_trace: tuple[str, str] = ("", "")  # producer trace, consumer trace
    detached_trace: str = ""
    orphan_trace: str = ""


def trace_id(index: int, salt: int = 0) -> str:
    return f"{salt:02x}{index:030x}"


class _Ids:
    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> str:
        self.next += 1
        return f"{self.next:016x}"


def build_shop(seed: int = 5) -> Shop:
    rng = random.Random(seed)
    ids = _Ids()
    shop = Shop()
    for index in range(TRACES):
        start = BASE + (index // 2) * S  # pairs share a start time
        journey = {"session_id": f"s-{index % 40:02d}", "user_id": f"u-{index % 20:02d}"}
        if index % 3 == 2:
            _products(shop, rng, ids, index, start, journey)
        else:
            _checkout(shop, rng, ids, index, start, journey)
    return shop


def _span(
    trace: str,
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    kind: SpanKind,
    start: int,
    duration: int,
    journey: dict[str, str],
    *,
    host: str | None = None,
    error: bool = False,
    attributes: dict[str, Any] | None = None,
    links: tuple[SpanLink, ...] = (),
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=start + duration,
        status=StatusCode.ERROR if error else StatusCode.UNSET,
        session_id=journey["session_id"],
        user_id=journey["user_id"],
        attributes=attributes or {},
        resource={"service.name": service, "host.name": host or f"{service}-0"},
        links=links,
    )


def _ms(rng: random.Random, median: float) -> int:
    return int(rng.lognormvariate(0, 0.3) * median * MS)


def _products(
    shop: Shop, rng: random.Random, ids: _Ids, index: int, start: int, journey: dict[str, str]
) -> None:
    trace = trace_id(index)
    root, client, server = ids(), ids(), ids()
    work = _ms(rng, 8)
    spans = shop.spans
    spans.append(
        _span(
            trace,
            root,
            None,
            "gateway",
            "GET /products",
            SpanKind.SERVER,
            start,
            work + 4 * MS,
            journey,
            attributes={"http.route": "/products"},
        )
    )
    spans.append(
        _span(
            trace,
            client,
            root,
            "gateway",
            "GET catalog",
            SpanKind.CLIENT,
            start + MS,
            work + 2 * MS,
            journey,
        )
    )
    parent = "00000000deadbeef" if index == ORPHAN else client
    if index == ORPHAN:
        shop.orphan_trace = trace
    spans.append(
        _span(
            trace, server, parent, "catalog", "list", SpanKind.SERVER, start + 2 * MS, work, journey
        )
    )


def _checkout(
    shop: Shop, rng: random.Random, ids: _Ids, index: int, start: int, journey: dict[str, str]
) -> None:
    trace = trace_id(index)
    shop.checkout_ids.append(trace)
    spans = shop.spans
    provider = "slowpay" if rng.random() < 0.25 else rng.choice(["fastpay", "okpay"])
    if provider == "slowpay":
        shop.slowpay_ids.add(trace)
    provider_ns = _ms(rng, 20) + (250 * MS if provider == "slowpay" else 0)
    host = f"inventory-{rng.randrange(3)}"
    fails = host == "inventory-2" and rng.random() < 0.5
    reserve_ns = _ms(rng, 6)

    root, pay_client, pay_server, provider_call = ids(), ids(), ids(), ids()
    inv_client, inv_server, producer, consumer = ids(), ids(), ids(), ids()
    t = start + MS
    pay_ns = provider_ns + 4 * MS
    spans.append(
        _span(
            trace,
            pay_client,
            root,
            "gateway",
            "POST /pay",
            SpanKind.CLIENT,
            t,
            pay_ns + 2 * MS,
            journey,
        )
    )
    spans.append(
        _span(
            trace,
            pay_server,
            pay_client,
            "payments",
            "charge",
            SpanKind.SERVER,
            t + MS,
            pay_ns,
            journey,
            host="payments-0",
            attributes={"payment.provider": provider},
        )
    )
    spans.append(
        _span(
            trace,
            provider_call,
            pay_server,
            "payments",
            "provider call",
            SpanKind.CLIENT,
            t + 2 * MS,
            provider_ns,
            journey,
        )
    )
    t += pay_ns + 3 * MS
    detached = index == DETACHED
    inv_trace = trace_id(index, salt=1) if detached else trace
    spans.append(
        _span(
            trace,
            inv_client,
            root,
            "gateway",
            "POST /reserve",
            SpanKind.CLIENT,
            t,
            reserve_ns + 2 * MS,
            journey,
            error=fails,
        )
    )
    spans.append(
        _span(
            inv_trace,
            inv_server,
            None if detached else inv_client,
            "inventory",
            "reserve",
            SpanKind.SERVER,
            t + MS,
            reserve_ns,
            journey,
            host=host,
            error=fails,
        )
    )
    if detached:
        shop.detached_trace = inv_trace
    t += reserve_ns + 3 * MS
    message = {"messaging.message.id": f"m-{index}", "messaging.destination.name": "orders"}
    spans.append(
        _span(
            trace,
            producer,
            root,
            "gateway",
            "orders publish",
            SpanKind.PRODUCER,
            t,
            MS,
            journey,
            attributes=message,
        )
    )
    consumer_trace, consumer_parent, links = trace, producer, ()
    if index in (BROKEN_HOP, LINKED_HOP):
        consumer_trace, consumer_parent = trace_id(index, salt=2), None
        if index == LINKED_HOP:
            links = (SpanLink(trace, producer),)
        else:
            shop.broken_hop_trace = (trace, consumer_trace)
    dwell = _ms(rng, 10)
    spans.append(
        _span(
            consumer_trace,
            consumer,
            consumer_parent,
            "notifications",
            "orders process",
            SpanKind.CONSUMER,
            t + MS + dwell,
            _ms(rng, 5),
            journey,
            attributes=message,
            links=links,
        )
    )
    end = t + 2 * MS
    spans.append(
        _span(
            trace,
            root,
            None,
            "gateway",
            "POST /checkout",
            SpanKind.SERVER,
            start,
            end - start,
            journey,
            error=fails,
            attributes={"http.route": "/checkout", "user.tier": rng.choice(["free", "pro"])},
        )
    )

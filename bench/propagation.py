"""What context propagation costs per hop, and what it adds to a real loopback HTTP call.

Run: ``python bench/propagation.py [--hops N] [--calls N] [--rounds K] [--budget-s S]``

1. Per hop: ``inject`` into an empty dict then ``extract`` from it, for a context holding
   a sampled span with a two-entry tracestate and the three journey keys in baggage
   (``traceparent`` + ``tracestate`` + ``baggage``). Threadline's ``build_propagator()``
   against the stock OpenTelemetry composite (``TraceContextTextMapPropagator`` +
   ``W3CBaggagePropagator``), each starting from the context its own extract produced,
   as on a middle hop. Beside them: Threadline when every hop carries other baggage
   (1,000 distinct sessions in turn, so its header caches never hit), and two floors,
   the API's no-op propagator and the three header strings formatted and read back
   without parsing. Goal (issue 17): Threadline at most half of stock.
2. Per HTTP call: a stdlib ``ThreadingHTTPServer`` on 127.0.0.1, in its own process as a
   called service would be, answers GETs over one keep-alive ``requests.Session``;
   uninstrumented, the client sends no propagation headers and the server reads none;
   "headers only" sends the same three headers prebuilt and the server ignores them (the
   cost of carrying them); instrumented, the client injects and the server extracts with
   the same propagator.

Variants are interleaved round by round so drift hits all of them alike; hop figures
are the median over rounds, HTTP figures the median (and mean) over all calls, printed
with ratios measured in this run. Every loop is bounded
by its count and by ``--budget-s`` overall; only the loopback address is used, and
the server process is stopped when the run ends.
"""

from __future__ import annotations

import argparse
import functools
import selectors
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import requests
from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from threadline.conventions import JOURNEY_ID, SESSION_ID, USER_ID
from threadline.sdk.propagation import build_propagator

LOOPBACK: Final = "127.0.0.1"
HOP_GOAL: Final = 0.5  # issue 17: inject+extract per hop at most half of stock
SERVER_START_TIMEOUT_S: Final = 30.0
JOURNEY: Final = {
    SESSION_ID: "9b2f6c1e-5d7a-4c1b-8e3f-2a6d9c0b7e41",
    USER_ID: "u_3f9a1c7e2b8d4f60",
    JOURNEY_ID: "checkout",
}


def _propagators() -> dict[str, TextMapPropagator]:
    return {
        "stock OpenTelemetry": CompositePropagator(
            [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
        ),
        "Threadline": build_propagator(),
    }


def _hop_context(propagator: TextMapPropagator, journey: dict[str, str] = JOURNEY) -> Context:
    """The context a middle service holds: what this propagator extracted from a caller."""
    span_context = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        False,
        TraceFlags(0x03),
        TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]),
    )
    context = trace.set_span_in_context(NonRecordingSpan(span_context), Context())
    for key, value in journey.items():
        context = baggage.set_baggage(key, value, context)
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    return propagator.extract(carrier)


def _time_hops(propagator: TextMapPropagator, context: Context, hops: int) -> float:
    """Seconds per inject+extract hop over ``hops`` hops."""
    inject = propagator.inject
    extract = propagator.extract
    start = time.perf_counter()
    for _ in range(hops):
        carrier: dict[str, str] = {}
        inject(carrier, context)
        extract(carrier)
    return (time.perf_counter() - start) / hops


class HeadersGetter(Getter[Message]):
    """Reads request headers as ``http.server`` parsed them (case-insensitive, repeatable)."""

    def get(self, carrier: Message, key: str) -> list[str] | None:
        values = carrier.get_all(key)
        return [str(value) for value in values] if values else None

    def keys(self, carrier: Message) -> list[str]:
        return list(carrier.keys())


HEADERS_GETTER: Final = HeadersGetter()


def _make_handler(by_path: dict[str, TextMapPropagator | None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: measure requests, not TCP handshakes
        disable_nagle_algorithm = True  # headers and body are two writes

        def do_GET(self) -> None:
            propagator = by_path.get(self.path)
            if propagator is not None:
                propagator.extract(self.headers, getter=HEADERS_GETTER)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return  # a line per request would be the slowest part of the server

    return Handler


def _time_calls(
    session: requests.Session, url: str, headers_for: Callable[[], dict[str, str]], calls: int
) -> list[float]:
    """Seconds each GET took, headers built per call as an instrumented client would."""
    durations = []
    for _ in range(calls):
        start = time.perf_counter()
        response = session.get(url, headers=headers_for(), timeout=5)
        response.raise_for_status()
        durations.append(time.perf_counter() - start)
    return durations


def _injecting(propagator: TextMapPropagator, context: Context) -> Callable[[], dict[str, str]]:
    def headers() -> dict[str, str]:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, context)
        return carrier

    return headers


NEW_BAGGAGE: Final = "Threadline, new baggage"
NOOP_FLOOR: Final = "floor: no-op API"
BARE_FLOOR: Final = "floor: bare strings"
DISTINCT_JOURNEYS: Final = 1000


def _time_varied_hops(propagator: TextMapPropagator, contexts: list[Context], hops: int) -> float:
    """Seconds per hop when every hop carries other baggage (no header seen twice in a row:
    what Threadline's header caches cannot help with)."""
    inject = propagator.inject
    extract = propagator.extract
    count = len(contexts)
    start = time.perf_counter()
    for index in range(hops):
        carrier: dict[str, str] = {}
        inject(carrier, contexts[index % count])
        extract(carrier)
    return (time.perf_counter() - start) / hops


def _time_bare_hops(hops: int) -> float:
    """The floor: the three header values formatted into a dict and read back, no parsing."""
    trace_id, span_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
    state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    bag = ",".join(f"{key}={value}" for key, value in JOURNEY.items())
    start = time.perf_counter()
    for _ in range(hops):
        carrier = {
            "traceparent": f"00-{trace_id:032x}-{span_id:016x}-03",
            "tracestate": state,
            "baggage": bag,
        }
        (carrier.get("traceparent"), carrier.get("tracestate"), carrier.get("baggage"))
    return (time.perf_counter() - start) / hops


def _bench_hops(hops: int, rounds: int, deadline: float) -> dict[str, float]:
    propagators = _propagators()
    contexts = {name: _hop_context(p) for name, p in propagators.items()}
    threadline = propagators["Threadline"]
    varied = [
        _hop_context(threadline, {**JOURNEY, SESSION_ID: f"session-{index}"})
        for index in range(DISTINCT_JOURNEYS)
    ]
    noop = CompositePropagator([])
    timers: dict[str, Callable[[int], float]] = {
        **{
            name: functools.partial(_time_hops, propagator, contexts[name])
            for name, propagator in propagators.items()
        },
        NEW_BAGGAGE: functools.partial(_time_varied_hops, threadline, varied),
        NOOP_FLOOR: functools.partial(_time_hops, noop, Context()),
        BARE_FLOOR: _time_bare_hops,
    }
    for timer in timers.values():  # warm up caches and regexes
        timer(min(hops, 500))
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer(hops))
        if time.monotonic() > deadline:
            break
    return {name: statistics.median(values) for name, values in samples.items()}


def _serve() -> None:
    """Server process: answer the bench routes on a free loopback port until stdin closes."""
    propagators = _propagators()
    routes: dict[str, TextMapPropagator | None] = {
        "/plain": None,
        "/stock": propagators["stock OpenTelemetry"],
        "/threadline": propagators["Threadline"],
    }
    server = ThreadingHTTPServer((LOOPBACK, 0), _make_handler(routes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench-http", daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)
    try:
        sys.stdin.read()  # the client closes our stdin when it is done
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def _server_process() -> Iterator[str]:
    """The base URL of a server running in its own process, as a called service would."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdin is None or process.stdout is None:
        raise RuntimeError("bench server pipes were not created")
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=SERVER_START_TIMEOUT_S):
                raise RuntimeError("bench server did not start in time")
        yield f"http://{LOOPBACK}:{int(process.stdout.readline())}"
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _bench_http(calls: int, rounds: int, deadline: float) -> dict[str, tuple[float, float]]:
    """(median, mean) seconds per call for each variant; the median shrugs off the rare
    scheduler stall that would dominate a mean of sub-millisecond calls."""
    propagators = _propagators()
    stock, threadline = propagators["stock OpenTelemetry"], propagators["Threadline"]
    prebuilt = _injecting(threadline, _hop_context(threadline))()
    variants: dict[str, tuple[str, Callable[[], dict[str, str]]]] = {
        "uninstrumented": ("/plain", dict),
        # The same three headers, prebuilt and not read: what carrying them costs alone.
        "headers only": ("/plain", lambda: dict(prebuilt)),
        "stock OpenTelemetry": ("/stock", _injecting(stock, _hop_context(stock))),
        "Threadline": ("/threadline", _injecting(threadline, _hop_context(threadline))),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with _server_process() as base, requests.Session() as session:
        for path, headers_for in variants.values():  # open the connection, warm up
            _time_calls(session, base + path, headers_for, min(calls, 50))
        order = list(variants)
        for round_index in range(rounds):
            # Rotate who goes first so no variant always follows the same one.
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                path, headers_for = variants[name]
                samples[name].extend(_time_calls(session, base + path, headers_for, calls))
            if time.monotonic() > deadline:
                break
    return {
        name: (statistics.median(values), statistics.fmean(values))
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", type=int, default=5000, help="inject+extract hops per round")
    parser.add_argument("--calls", type=int, default=300, help="HTTP calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per variant")
    parser.add_argument("--budget-s", type=float, default=120.0, help="stop starting rounds after")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return
    deadline = time.monotonic() + args.budget_s

    per_hop = _bench_hops(args.hops, args.rounds, deadline)
    stock_hop = per_hop["stock OpenTelemetry"]
    print(
        "Propagation per hop: inject + extract of traceparent, tracestate (2 entries) and "
        f"baggage (3 journey keys); median of {args.rounds} rounds x {args.hops} hops"
    )
    for name, seconds in per_hop.items():
        goal = ""
        if name == "Threadline":
            verdict = "met" if seconds / stock_hop <= HOP_GOAL else "MISSED"
            goal = f"   goal <= {HOP_GOAL:.2f}: {verdict}"
        print(
            f"  {name:<26} {seconds * 1e6:8.2f} us/hop   ratio to stock "
            f"{seconds / stock_hop:5.2f}{goal}"
        )

    per_call = _bench_http(args.calls, args.rounds, deadline)
    plain_median, plain_mean = per_call["uninstrumented"]
    print(
        f"\nLoopback HTTP GET with requests (keep-alive, stdlib ThreadingHTTPServer); "
        f"{args.rounds} rounds x {args.calls} calls per variant, per-call median (mean)"
    )
    for name, (median, mean) in per_call.items():
        print(
            f"  {name:<22} {median * 1e6:7.1f} us/call ({mean * 1e6:7.1f})  "
            f"added {(median - plain_median) * 1e6:+6.1f} us ({(mean - plain_mean) * 1e6:+6.1f})  "
            f"ratio to uninstrumented {median / plain_median:5.3f} ({mean / plain_mean:5.3f})"
        )


if __name__ == "__main__":
    main()

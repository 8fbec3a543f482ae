"""Fleet views as the data grows: each API answer's time at a small and a large store.

    python bench/fleet_growth.py                          # 200,000 then 2,000,000 spans
    python bench/fleet_growth.py --small 20000 --large 200000   # quicker
    PYTHONPATH=/path/to/other/src python bench/fleet_growth.py  # another build

Starts ``threadline serve`` on 127.0.0.1 with a new DuckDB file in a temporary
directory, loads ``--small`` spans of the twelve-service shop
(``analysis_workload.py``: ~19 spans a trace, journeys of a few traces per session,
a slow payment provider, a failing host and broken propagation) through OTLP/HTTP
(protobuf, gzip, ``--senders`` at once, each request answered once stored), and times
every fleet view as the UI asks for it over HTTP:

  the service map (one answer holds the service and the operation edges), the
  operations table with its per-operation percentiles (all services, one service),
  RED series of one service at 1-minute and 1-hour buckets, error hotspots,
  journeys (recent; failed and slowest), propagation health, and trace search
  ordered newest and slowest (by duration: a trace UI's "longest first").

After each load it waits ``--settle`` seconds (past the 2 s of no writes after which
the server's writer folds its deltas), then until the server's processes are idle
(under a tenth of a core over a second, at most ``--idle-bound`` seconds), and prints
how long that took: after a burst the writer folds the burst's deltas and checkpoints,
and that takes longer the larger the burst. So both sizes are timed in the same state,
with nothing of the load still running. ``--no-idle-wait`` times them right after the
``--settle`` seconds (``--settle 0 --no-idle-wait``: while the last commits' deltas may
still be unfolded).
Then it loads more spans into the same hours until the store holds ``--large`` and
times every view again. Both loads spread their traces over the same ``--hours``,
ending at the last whole hour (more traffic in the same period, as a fleet grows; no
span starts in the future, which the server would move back, and the phases print how
many starts it moved), so each view's window holds
``large / small`` times the data. It prints each view's fastest time (of
``--repeat`` after a warm-up) at both sizes and the growth ratio; the goal is a ratio
of at most 2.5 for a tenfold growth.

The views' endpoints and parameters are read from the server's ``/api/openapi.json``,
so the same script times any build. Every request has a deadline (``--timeout``),
loading stops at ``--load-timeout`` seconds per phase, and the server is stopped at
the end. ``--keep DIR`` runs the server in a new directory ``DIR`` and leaves its store
(``DIR/spans.duckdb``) there, so its reads can be timed afterwards (``trace_groups.py --db``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

# Run as a script, so this directory is on sys.path and the workload module imports.
from analysis_workload import generate
from ingest import process_cpu_s
from threadline.server.batch import SpanBatch

# The server process is the one the tests start (tests/support).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.processes import threadline_serve

# The server counts as idle when its processes (it and its decoding workers) used less
# than this share of a core over ``IDLE_INTERVAL_S``.
IDLE_SHARE: Final = 0.1
IDLE_INTERVAL_S: Final = 1.0
IDLE_BOUND_S: Final = 120.0
HOUR_NS: Final = 3600 * 1_000_000_000
MINUTE_NS: Final = 60 * 1_000_000_000
GROWTH_GOAL: Final = 2.5
# Sessions per 200k spans: the number of journeys grows with the traffic.
SESSIONS_PER_200K: Final = 4_000
# Spans per OTLP request: the SDK's default batch is 512; collectors send more.
SPANS_PER_REQUEST: Final = 1_000
# Generated a slice of the hours at a time, so the spans arrive roughly in time order
# (as live traffic does) and memory stays bounded.
SLICES: Final = 48
GENERATE_BATCH: Final = 10_000
# Requests in flight beyond the senders: keeps them busy while the next are encoded.
QUEUE_AHEAD: Final = 2
# Times a 503 (store overloaded) is retried before the load gives up.
OVERLOAD_RETRIES: Final = 30
PROTOBUF: Final = "application/x-protobuf"

_KINDS: Final = {
    "internal": trace_pb2.Span.SPAN_KIND_INTERNAL,
    "server": trace_pb2.Span.SPAN_KIND_SERVER,
    "client": trace_pb2.Span.SPAN_KIND_CLIENT,
    "producer": trace_pb2.Span.SPAN_KIND_PRODUCER,
    "consumer": trace_pb2.Span.SPAN_KIND_CONSUMER,
}
_STATUSES: Final = {
    "unset": trace_pb2.Status.STATUS_CODE_UNSET,
    "ok": trace_pb2.Status.STATUS_CODE_OK,
    "error": trace_pb2.Status.STATUS_CODE_ERROR,
}


# --- OTLP encoding of the workload's span batches -------------------------------------


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in values.items()]


def otlp_requests(batch: SpanBatch, spans_per_request: int) -> Iterator[tuple[bytes, int]]:
    """The batch's rows as gzipped OTLP protobuf requests, with their span counts.

    Journey keys travel as the SDK sends them (``session.id`` / ``user.id`` span
    attributes); the server derives its columns from the wire format again.
    """
    rows = batch.table.to_pylist()
    for offset in range(0, len(rows), spans_per_request):
        request = ExportTraceServiceRequest()
        scopes: dict[tuple[str, str], trace_pb2.ScopeSpans] = {}
        chunk = rows[offset : offset + spans_per_request]
        for row in chunk:
            key = (row["resource"], row["scope_name"])
            scope = scopes.get(key)
            if scope is None:
                resource_spans = request.resource_spans.add()
                resource_spans.resource.attributes.extend(_attributes(json.loads(row["resource"])))
                scope = resource_spans.scope_spans.add()
                scope.scope.name = row["scope_name"]
                scopes[key] = scope
            attributes = json.loads(row["attributes"])
            for column, name in (("session_id", "session.id"), ("user_id", "user.id")):
                if row[column] is not None:
                    attributes[name] = row[column]
            span = scope.spans.add(
                trace_id=bytes.fromhex(row["trace_id"]),
                span_id=bytes.fromhex(row["span_id"]),
                parent_span_id=bytes.fromhex(row["parent_span_id"] or ""),
                name=row["name"],
                kind=_KINDS[row["kind"]],
                start_time_unix_nano=row["start_ns"],
                end_time_unix_nano=row["end_ns"],
            )
            span.attributes.extend(_attributes(attributes))
            span.status.code = _STATUSES[row["status"]]
            if row["status_message"]:
                span.status.message = row["status_message"]
        yield gzip.compress(request.SerializeToString(), 1), len(chunk)


def shop_requests(
    spans: int, *, first_ns: int, hours: int, sessions: int, seed: int
) -> Iterator[tuple[bytes, int]]:
    """About ``spans`` spans of the shop over ``hours`` from ``first_ns``, slice by slice."""
    slice_ns = hours * HOUR_NS // SLICES
    per_slice = -(-spans // SLICES)
    for index in range(SLICES):
        batches = generate(
            per_slice,
            end_ns=first_ns + (index + 1) * slice_ns,
            window_ns=slice_ns,
            sessions=sessions,
            batch_spans=GENERATE_BATCH,
            seed=seed * 1_000 + index,
        )
        for batch in batches:
            yield from otlp_requests(batch, SPANS_PER_REQUEST)


# --- loading ----------------------------------------------------------------------------


def _post(client: httpx.Client, url: str, body: bytes, spans: int) -> int:
    headers = {"content-type": PROTOBUF, "content-encoding": "gzip"}
    for _ in range(OVERLOAD_RETRIES):
        answer = client.post(url, content=body, headers=headers)
        if answer.status_code == 200:
            return spans
        if answer.status_code != 503:
            raise RuntimeError(f"server answered {answer.status_code}: {answer.text[:300]}")
        time.sleep(float(answer.headers.get("retry-after", "1")))
    raise RuntimeError(f"server still overloaded after {OVERLOAD_RETRIES} tries")


def load(
    url: str,
    requests: Iterator[tuple[bytes, int]],
    *,
    senders: int,
    timeout_s: float,
    deadline: float,
) -> tuple[int, float]:
    """POST every request with ``senders`` at once; spans acknowledged and seconds taken."""
    started = time.perf_counter()
    acknowledged = 0
    pending: list[Future[int]] = []
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    with (
        httpx.Client(timeout=timeout_s, limits=limits) as client,
        ThreadPoolExecutor(senders) as pool,
    ):
        for body, spans in requests:
            if time.monotonic() > deadline:
                print("  (load stopped at its deadline)")
                break
            pending.append(pool.submit(_post, client, f"{url}/v1/traces", body, spans))
            while len(pending) >= senders * QUEUE_AHEAD:
                acknowledged += pending.pop(0).result()
        for future in pending:
            acknowledged += future.result()
    return acknowledged, time.perf_counter() - started


# --- the views --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class View:
    name: str
    path: str
    params: dict[str, str]
    missing: str = ""  # why this server cannot answer it; empty when it can


@dataclass(frozen=True, slots=True)
class Timing:
    status: int
    fastest_s: float
    median_s: float
    rows: int


def _parameters(openapi: dict[str, Any], path: str) -> set[str] | None:
    """The query parameters of ``GET path``; None when the server has no such endpoint."""
    operation = openapi.get("paths", {}).get(path, {}).get("get")
    if operation is None:
        return None
    return {p["name"] for p in operation.get("parameters", [])}


def wait_until_idle(pid: int, bound_s: float) -> tuple[float, bool]:
    """Wait until process ``pid`` and its children use under ``IDLE_SHARE`` of a core
    over ``IDLE_INTERVAL_S``, at most ``bound_s``; the seconds waited, and whether idle."""
    started = time.monotonic()
    while True:
        before = sum(process_cpu_s(pid))
        time.sleep(IDLE_INTERVAL_S)
        used = sum(process_cpu_s(pid)) - before
        waited = time.monotonic() - started
        if used < IDLE_SHARE * IDLE_INTERVAL_S:
            return waited, True
        if waited >= bound_s:
            return waited, False


def views(openapi: dict[str, Any], *, hours: int, end_ms: int) -> list[View]:
    """Every fleet view, with the window the UI would ask for; those this server's
    OpenAPI document does not describe (an older build) are marked ``missing``."""
    window = {"window": f"{hours}h", "end": str(end_ms)}
    start_ms = end_ms - hours * 3_600_000
    span = {"start": str(start_ms), "end": str(end_ms)}
    red = "/api/services/{service}/red"
    candidates: list[tuple[str, str, dict[str, str]]] = [
        ("service map (services and operations)", "/api/service-map", window),
        ("operations + percentiles", "/api/operations", window),
        ("operations of one service", "/api/operations", {**window, "service": "payments"}),
        ("RED series, 1m buckets", red, {**window, "bucket": "1m"}),
        ("RED series, 1h buckets", red, {**window, "bucket": "1h"}),
        ("error hotspots", "/api/errors/hotspots", window),
        ("journeys, recent", "/api/journeys", {**span, "order": "recent"}),
        (
            "journeys, failed slowest",
            "/api/journeys",
            {**span, "order": "slowest", "failed": "true"},
        ),
        ("propagation health", "/api/propagation", window),
        ("trace search, newest", "/api/traces", {**span, "order": "recent"}),
        ("trace search, slowest", "/api/traces", {**span, "order": "slowest"}),
    ]
    found = []
    for name, path, params in candidates:
        missing = "" if _parameters(openapi, path) is not None else f"no GET {path}"
        found.append(View(name, path.replace("{service}", "payments"), params, missing))
    return found


def _rows(answer: Any) -> int:
    """A rough size of an answer: the length of its longest list."""
    if isinstance(answer, list):
        return len(answer)
    if isinstance(answer, dict):
        return max((_rows(value) for value in answer.values()), default=0)
    return 0


def time_view(client: httpx.Client, url: str, view: View, repeat: int) -> Timing:
    """Fastest and median of ``repeat`` GETs after one warm-up (the fastest is the one
    least disturbed by other work on the machine, so ratios use it)."""
    if view.missing:
        return Timing(0, 0.0, 0.0, 0)
    first = client.get(url + view.path, params=view.params)
    if first.status_code != 200:
        return Timing(first.status_code, 0.0, 0.0, 0)
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url + view.path, params=view.params).raise_for_status()
        runs.append(time.perf_counter() - started)
    return Timing(200, min(runs), statistics.median(runs), _rows(first.json()))


def time_views(
    url: str, chosen: Sequence[View], repeat: int, timeout_s: float
) -> dict[str, Timing]:
    with httpx.Client(timeout=timeout_s) as client:
        return {view.name: time_view(client, url, view, repeat) for view in chosen}


def report(
    chosen: Sequence[View],
    sizes: tuple[int, int],
    small: dict[str, Timing],
    large: dict[str, Timing],
) -> None:
    print(
        f"\n{'fleet view (HTTP), fastest':<28}{f'{sizes[0]:,} ms':>14}{f'{sizes[1]:,} ms':>16}"
        f"{'growth':>9}  median ms at each size; rows at each size"
    )
    worst = 0.0
    for view in chosen:
        before, after = small[view.name], large[view.name]
        if view.missing:
            print(f"{view.name:<28}  not offered by this server ({view.missing})")
            continue
        if before.status != 200 or after.status != 200:
            print(f"{view.name:<28}  not offered by this server (HTTP {after.status})")
            continue
        growth = after.fastest_s / before.fastest_s
        worst = max(worst, growth)
        mark = "" if growth <= GROWTH_GOAL else "  over the goal"
        print(
            f"{view.name:<28}{before.fastest_s * 1000:>14.1f}{after.fastest_s * 1000:>16.1f}"
            f"{growth:>8.1f}×  {before.median_s * 1000:.0f} / {after.median_s * 1000:.0f}; "
            f"{before.rows} / {after.rows}{mark}"
        )
    print(
        f"\nworst growth {worst:.1f}× for {sizes[1] / sizes[0]:.1f}× the spans "
        f"(goal ≤ {GROWTH_GOAL}×)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", type=int, default=200_000, help="spans at the first timing")
    parser.add_argument("--large", type=int, default=2_000_000, help="spans at the second")
    parser.add_argument("--hours", type=int, default=6, help="hours the traffic spreads over")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per view")
    parser.add_argument("--senders", type=int, default=4, help="OTLP requests at once")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds to wait after each load (s)"
    )
    parser.add_argument(
        "--idle-bound",
        type=float,
        default=IDLE_BOUND_S,
        help="most seconds to wait after --settle for the server to be idle",
    )
    parser.add_argument(
        "--no-idle-wait",
        action="store_true",
        help="time the views right after --settle, busy or not",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline per request (s)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="a new directory for the server's store, kept after the run (to time its reads)",
    )
    parser.add_argument(
        "--load-timeout", type=float, default=3600.0, help="deadline of each load phase (s)"
    )
    args = parser.parse_args()
    if not 0 < args.small < args.large:
        parser.error("--small must be greater than 0 and less than --large")
    if args.hours < 1:
        parser.error("--hours must be at least 1")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep} exists: give a new directory")
    if not 0 <= args.settle <= 60:
        parser.error("--settle must be between 0 and 60 seconds")
    # Whole hours, so 1-hour buckets line up with the window, ending at the last one
    # begun: a span starting in the future (past the server's clock skew allowance) is
    # moved back to when it was received and marked with its original start, so traffic
    # ending at the next whole hour would have had that part of it rewritten, a share
    # depending on the minute the bench started (12% of the spans at 20 past).
    end_ns = time.time_ns() // HOUR_NS * HOUR_NS
    first_ns = end_ns - args.hours * HOUR_NS
    if args.keep is not None:
        args.keep.mkdir(parents=True)
    with (
        tempfile.TemporaryDirectory(prefix="fleet-growth-") as tmp,
        threadline_serve(args.keep or Path(tmp)) as server,
    ):
        chosen = views(
            httpx.get(f"{server.url}/api/openapi.json", timeout=args.timeout).json(),
            hours=args.hours,
            end_ms=end_ns // 1_000_000,
        )
        timings = []
        sizes: list[int] = []
        stored = 0
        for phase, (target, seed) in enumerate(((args.small, 1), (args.large, 2))):
            spans = target - stored
            sessions = max(1, SESSIONS_PER_200K * spans // 200_000)
            requests = shop_requests(
                spans, first_ns=first_ns, hours=args.hours, sessions=sessions, seed=seed
            )
            sent, seconds = load(
                server.url,
                requests,
                senders=args.senders,
                timeout_s=args.timeout,
                deadline=time.monotonic() + args.load_timeout,
            )
            stored += sent
            held = httpx.get(f"{server.url}/api/stats", timeout=args.timeout).json()
            ready = httpx.get(f"{server.url}/readyz", timeout=args.timeout).json()
            print(
                f"phase {phase + 1}: loaded {sent:,} spans through OTLP/HTTP in "
                f"{seconds:.1f} s ({sent / seconds:,.0f} spans/s); the server holds "
                f"{held['spans']:,} spans in {held['traces']:,} traces, and moved back "
                f"{ready['future_starts_clamped']:,} starts from the future"
            )
            sizes.append(stored)
            time.sleep(args.settle)
            if not args.no_idle_wait:
                waited, idle = wait_until_idle(server.pid, args.idle_bound)
                state = "idle" if idle else "still busy (timed anyway)"
                print(f"  the server was {state} {args.settle + waited:.1f} s after the load")
            timings.append(time_views(server.url, chosen, args.repeat, args.timeout))
    report(chosen, (sizes[0], sizes[1]), timings[0], timings[1])


if __name__ == "__main__":
    main()

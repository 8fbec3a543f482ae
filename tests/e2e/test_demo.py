"""The demo end to end: real server, real shop processes, real brokers, read through the API."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from threadline.conventions import SDK_STATS_SPAN
from threadline.demo.message_hop import rabbitmq_reachable
from threadline.demo.processes import free_port
from threadline.demo.stack import SHOP_SERVICES
from threadline.server.analysis.skew import adjust_clock_skew
from threadline.server.model import SpanKind, SpanRecord

from .conftest import DURATION_S, SEED, ShopRun, children_of, running

pytestmark = pytest.mark.e2e

SHOP = {"gateway", "catalog", "orders", "payments", "fulfillment"}
CLI_TIMEOUT_S = 90.0
# A port ``free_port`` found free may be taken by another process (the suite runs in
# parallel) before the demo binds it; the demo then refuses to start, and another is tried.
PORT_ATTEMPTS = 3


def checkout_traces(run: ShopRun, outcome: str) -> list[tuple[Any, dict[str, Any]]]:
    """(journey record, full trace) of each checkout whose journey ended with ``outcome``:
    of a journey that ordered, the checkout that went through (a shopper who met the
    payments error and went on tried twice)."""
    found = []
    for record in run.records:
        if record.outcome != outcome:
            continue
        journey = run.get(f"/journeys/{record.session_id}")
        checkouts = [s for s in journey["traces"] if s["root_operation"] == "POST /checkout"]
        for summary in checkouts[-1:] if outcome == "ordered" else checkouts:
            found.append((record, run.get(f"/traces/{summary['trace_id']}")))
    return found


def test_a_checkout_is_one_trace_through_every_service_and_the_queue(shop_run: ShopRun) -> None:
    """A paid checkout is one trace from the gateway through payments, the queue and fulfillment."""
    checkouts = checkout_traces(shop_run, "ordered")
    assert checkouts, f"no journey of seed {SEED} reached a paid checkout: {shop_run.records}"
    for _, trace in checkouts:
        spans = trace["spans"]
        assert {s["service"] for s in spans} == SHOP
        roots = [s for s in spans if s["parent_span_id"] is None]
        assert [(r["service"], r["kind"]) for r in roots] == [("gateway", "server")]
        assert not [s for s in spans if s["orphan"]], "a span lost its parent on the way"


def test_each_hop_links_a_caller_span_to_a_callee_span(shop_run: ShopRun) -> None:
    """A server span hangs under a client span of another service; a consumer under a producer."""
    broker = shop_run.stack.broker.system
    for _, trace in checkout_traces(shop_run, "ordered"):
        by_id = {s["span_id"]: s for s in trace["spans"]}
        for span in trace["spans"]:
            parent = by_id.get(span["parent_span_id"] or "")
            if span["kind"] == "server" and parent is not None:
                assert parent["kind"] == "client"
                assert parent["service"] != span["service"]
            if span["kind"] == "consumer":
                assert parent is not None
                assert (parent["kind"], parent["service"]) == ("producer", "orders")
                assert span["service"] == "fulfillment"
                assert span["name"] == "process order.placed"
                assert parent["name"] == "publish order.placed"
                for hop_span, operation in ((parent, "send"), (span, "process")):
                    attributes = hop_span["attributes"]
                    assert attributes["messaging.system"] == broker
                    assert attributes["messaging.destination.name"] == "order.placed"
                    assert attributes["messaging.operation.type"] == operation
                assert (
                    parent["attributes"]["messaging.message.id"]
                    == span["attributes"]["messaging.message.id"]
                )
        assert [s for s in trace["spans"] if s["kind"] == "consumer"], "no consumer span"


def test_every_service_stamps_the_session_and_the_user(shop_run: ShopRun) -> None:
    """The journey keys ride along to every service, across the queue too."""
    for record, trace in checkout_traces(shop_run, "ordered"):
        stamped = set()
        for span in trace["spans"]:
            assert span["session_id"] == record.session_id, span
            # ASGI "http send" spans close after the handler's journey block has ended.
            if span["kind"] != "internal":
                assert span["user_id"] == record.user_id, span
                stamped.add(span["service"])
        assert stamped == SHOP


def test_a_journey_lists_the_users_traces_in_time_order(shop_run: ShopRun) -> None:
    """GET /api/journeys/{session} holds every request of that session, oldest first."""
    for record in shop_run.records:
        journey = shop_run.get(f"/journeys/{record.session_id}")
        assert journey["user_id"] == record.user_id
        traces = journey["traces"]
        assert len(traces) == record.requests
        starts = [t["start_ns"] for t in traces]
        assert starts == sorted(starts)
        assert traces[0]["root_operation"] == "GET /browse"
        assert [t["root_operation"] for t in traces] == list(record.steps)
        if record.outcome == "checkout_failed":
            assert traces[-1]["root_operation"] == "POST /checkout"


def test_a_failed_charge_shows_as_errors_up_to_the_gateway(shop_run: ShopRun) -> None:
    """A failing payment marks payments, orders and the gateway, and says why."""
    failed = checkout_traces(shop_run, "checkout_failed")
    assert failed, f"no checkout of seed {SEED} failed: {shop_run.records}"
    for _, trace in failed:
        assert trace["summary"]["status"] == "error"
        errors = [s for s in trace["spans"] if s["status"] == "error"]
        servers = {s["service"] for s in errors if s["kind"] == "server"}
        assert servers == {"gateway", "orders", "payments"}
        origin = [s for s in errors if s["name"] == "authorize payment"]
        assert origin
        assert "unavailable" in origin[0]["status_message"]
        assert "fulfillment" not in {s["service"] for s in trace["spans"]}


def test_slow_charges_name_their_provider(shop_run: ShopRun) -> None:
    """Charges carry payment.provider, so the slow provider can be told apart."""
    providers = set()
    for _, trace in checkout_traces(shop_run, "ordered"):
        for span in trace["spans"]:
            if span["service"] == "payments" and span["kind"] == "server":
                providers.add(span["attributes"]["payment.provider"])
    assert "legacy-bank" in providers


def test_one_host_demo_needs_no_clock_skew_adjustment(shop_run: ShopRun) -> None:
    """Every service of the demo runs on this machine, on one clock: no span is moved.

    The services record no host.name, one service.instance.id per process, and their
    calls over loopback (http.url to 127.0.0.1, net.peer.ip 127.0.0.1); the rule must
    recognise exactly that. A server span that closes a little after its client span
    (as ASGI servers do once the response is written, seen on busy machines) stays put.
    """
    traces = [
        trace
        for outcome in ("ordered", "checkout_failed")
        for _, trace in checkout_traces(shop_run, outcome)
    ]
    assert traces, f"no journey of seed {SEED} reached a checkout: {shop_run.records}"
    for trace in traces:
        assert trace["skew_adjustments"] == [], trace["trace_id"]
        records = {s["span_id"]: _record(trace["trace_id"], s) for s in trace["spans"]}
        charge = next(
            r for r in records.values() if r.service_name == "payments" and r.kind == "server"
        )
        client = records[charge.parent_span_id or ""]
        # Less than the time the request took to arrive, so the span stays shorter than
        # its caller: a clock rule, not the "callee outlasted its caller" rule, decides.
        overflow = min(2_000_000, (charge.start_ns - client.start_ns) // 2)
        assert overflow > 0
        late = dataclasses.replace(charge, end_ns=client.end_ns + overflow)
        assert late.duration_ns < client.duration_ns
        records[charge.span_id] = late
        result = adjust_clock_skew(records.values())
        assert result.adjustments == (), trace["trace_id"]


def _record(trace_id: str, span: dict[str, Any]) -> SpanRecord:
    """A span of the API's trace answer as the analysis takes it (times, kind, attributes)."""
    return SpanRecord(
        trace_id=trace_id,
        span_id=span["span_id"],
        parent_span_id=span["parent_span_id"],
        service_name=span["service"],
        name=span["name"],
        kind=SpanKind(span["kind"]),
        start_ns=span["start_ns"],
        end_ns=span["end_ns"],
        attributes=span["attributes"],
        resource=span["resource"],
    )


def _demo_command(port: int, db: Path, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "threadline", "demo", "--users", "3", "--seed", str(SEED)),
        *("--port", str(port), "--db", str(db), *extra),
    ]


def _read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _wait_until_shop_is_up(process: subprocess.Popen[str]) -> set[int]:
    """Read the demo's output until its shop runs and users start; return its children."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + CLI_TIMEOUT_S
    ready = False
    while not ready and time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(queue.Empty):
            ready = "queue hop" in lines.get(timeout=0.2)
    assert ready, "the demo never reported its shop as running"
    children = children_of(process.pid)
    assert len(children) >= 6, f"expected the server and five services, saw {children}"
    time.sleep(1.0)  # let the users start shopping
    return children


def _stop(process: subprocess.Popen[str], pids: set[int]) -> None:
    """Teardown: kill the demo and whatever it left, so a failing test leaks nothing."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for pid in pids:
        if running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@dataclasses.dataclass(frozen=True, slots=True)
class DemoRun:
    """One finished `threadline demo --exit`: its exit code, its output, the processes it
    started (read from /proc while it ran) and those still running once it exited."""

    code: int
    output: str
    children: frozenset[int]
    left: tuple[int, ...]

    @property
    def text(self) -> str:
        """The output with its lines joined: where the console wraps a sentence depends
        on the length of the paths in it."""
        return " ".join(self.output.split())


def _watched_demo(directory: Path) -> DemoRun:
    """Run `threadline demo --exit` into ``directory``'s threadline.duckdb, watching its
    children; whatever it leaves running is recorded, then killed."""
    for _ in range(PORT_ATTEMPTS):
        command = _demo_command(
            free_port(), directory / "threadline.duckdb", "--duration", str(DURATION_S), "--exit"
        )
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=directory
        )
        seen: set[int] = set()
        output: queue.Queue[str] = queue.Queue()
        readers = [
            threading.Thread(target=_read_lines, args=(stream, output), daemon=True)
            for stream in (process.stdout, process.stderr)
        ]
        for reader in readers:
            reader.start()
        try:
            deadline = time.monotonic() + CLI_TIMEOUT_S
            while process.poll() is None and time.monotonic() < deadline:
                seen |= children_of(process.pid)
                time.sleep(0.2)
            code = process.wait(timeout=1)
            for reader in readers:
                reader.join(5)
            text = "".join(output.queue)
            left = tuple(pid for pid in seen if running(pid))
        finally:
            _stop(process, seen)
        if "is already in use" not in text:
            break
    return DemoRun(code, text, frozenset(seen), left)


@pytest.fixture(scope="module")
def two_demos(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoRun, int, DemoRun, Path]:
    """Two demo runs, one after the other, into one directory: the first, the time the
    second started, the second, and the directory."""
    directory = tmp_path_factory.mktemp("two-demos")
    first = _watched_demo(directory)
    assert first.code == 0, f"the demo exited with {first.code}; its output:\n{first.output}"
    second_started_ns = time.time_ns()
    second = _watched_demo(directory)
    assert second.code == 0, f"the demo exited with {second.code}; its output:\n{second.output}"
    return first, second_started_ns, second, directory


def test_demo_command_prints_the_summary_and_leaves_no_process(
    two_demos: tuple[DemoRun, int, DemoRun, Path],
) -> None:
    """`threadline demo --exit` runs the shop, prints what it saw and cleans up after itself."""
    for run in (two_demos[0], two_demos[2]):
        assert len(run.children) >= 6, f"expected the server and five services: {run.children}"
        assert not run.left, f"left running: {run.left}"
        text = run.text
        for expected in (
            "What Threadline saw",
            "traces,",
            "Slowest journey",
            "Failing path",
            "threadline journey ",
            "threadline trace ",
            "threadline traces --status error",
            "/api/docs",
            "(the web UI",
            "threadline critical-path ",
            "Where users left: of ",
            "threadline funnel checkout",
            "threadline flows --attr app.plan=trial",
            "over RabbitMQ" if rabbitmq_reachable() else "over an SQLite queue file",
        ):
            assert expected in text, text


_THIS_RUN = re.compile(r"This run: (\d+) users, (\d+) journeys, (\d+) traces, (\d+) spans")


def test_a_second_demo_over_the_same_store_summarises_only_its_own_run(
    two_demos: tuple[DemoRun, int, DemoRun, Path],
) -> None:
    """Run twice in one directory: the second summary counts its own users and journeys."""
    first_run, second_started_ns, second_run, directory = two_demos
    first, second = first_run.text, second_run.text
    counted = _THIS_RUN.search(second)
    assert counted, second
    users, journeys, traces, _ = (int(group) for group in counted.groups())
    # The run is over and the server gone: read the file itself.
    with duckdb.connect(str(directory / "threadline.duckdb"), read_only=True) as db:
        row = db.execute(
            "SELECT count(DISTINCT session_id), count(DISTINCT user_id), count(DISTINCT trace_id)"
            " FROM spans WHERE session_id IS NOT NULL AND start_ns >= ?",
            [second_started_ns],
        ).fetchone()
        all_sessions = db.execute("SELECT count(DISTINCT session_id) FROM spans").fetchone()
        reporting = db.execute(
            "SELECT DISTINCT service_name FROM spans WHERE name = ? AND start_ns >= ?",
            [SDK_STATS_SPAN, second_started_ns],
        ).fetchall()
    assert row is not None
    assert all_sessions is not None
    assert (journeys, users, traces) == (row[0], row[1], row[2])
    assert users == 3
    assert all_sessions[0] > journeys, "the first run's journeys should still be stored"
    # Every shop service reported its export figures for the service pages.
    assert {service for (service,) in reporting} == set(SHOP_SERVICES)
    assert "also holds earlier runs" in second
    assert "threadline traces --sort oldest" in second
    assert "also holds earlier runs" not in first
    for output in (first, second):
        # Seed 12: ada pays through the slow provider; the summary must name it.
        assert "payment.provider=legacy-bank" in output, output
        assert "That is the slow dependency this demo plants" in output, output


@contextlib.contextmanager
def _shop_running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], set[int]]]:
    """A minute-long `threadline demo` whose shop is up; yields it and its children.

    Whatever is left of it is killed when the block ends.
    """
    command = _demo_command(free_port(), tmp_path / "t.duckdb", "--duration", "60")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
    )
    seen: set[int] = set()
    try:
        seen = _wait_until_shop_is_up(process)
        yield process, seen
    finally:
        _stop(process, seen)


def test_ctrl_c_stops_the_demo_and_every_process_it_started(tmp_path: Path) -> None:
    """SIGINT mid-run ends the demo promptly and leaves no server or service running."""
    with _shop_running(tmp_path) as (process, seen):
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        assert not [pid for pid in seen if running(pid)]


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    """Asking for a port another process listens on fails at once and says so."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _demo_command(port, tmp_path / "t.duckdb", "--exit"),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            cwd=tmp_path,
        )
    assert result.returncode != 0
    assert f"port {port}" in result.stderr
    assert "already in use" in result.stderr


def test_a_killed_demo_takes_its_processes_with_it(tmp_path: Path) -> None:
    """Even SIGKILL, which the demo cannot catch, leaves no server or service behind."""
    with _shop_running(tmp_path) as (process, seen):
        process.kill()
        process.wait()
        # The kernel signals the orphans; give them a bounded while to go.
        deadline = time.monotonic() + 30
        while [pid for pid in seen if running(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in seen if running(pid)]

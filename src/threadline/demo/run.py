"""`threadline demo` from start to summary.

Start the stack, let simulated users shop for the run's duration while a progress
line shows what they do, wait until the last spans have arrived, stop the shop,
and print what Threadline saw. Without ``exit_after_summary`` the server then keeps
running so the commands the summary suggests can be tried; Ctrl-C ends it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from rich.console import Console

from threadline import conventions
from threadline.demo.message_hop import RABBITMQ_HOST, RABBITMQ_PORT
from threadline.demo.progress import UsersProgress
from threadline.demo.stack import SHOP_SERVICES, Stack, running_stack
from threadline.demo.summary import RunWindow, collect_summary, render_summary
from threadline.demo.users import UserDriver
from threadline.demo.wiring import BrokerPreference, BrokerSpec

PROGRESS_REFRESH_S: Final = 0.25
# After the duration, users finish the request in flight (at most one slow checkout).
USERS_FINISH_S: Final = 15.0
# Spans come in within the export delay (200 ms) of finishing; a count that holds
# still this long means the shop has gone quiet.
SETTLED_AFTER_S: Final = 1.0
SETTLE_POLL_S: Final = 0.25
SETTLE_LIMIT_S: Final = 20.0
# The server's readiness probe, which also counts the commits its store has not folded.
READY_PATH: Final = "/readyz"
SERVER_WATCH_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What `threadline demo` was asked for (its defaults live on the command's options)."""

    users: int
    duration_s: float
    port: int
    db: Path
    seed: int
    exit_after_summary: bool
    broker: BrokerPreference


class DemoError(RuntimeError):
    """The demo could not go on; the message says why."""


def run_demo(options: DemoOptions, console: Console) -> None:
    console.print(f"Starting Threadline and the shop ({', '.join(SHOP_SERVICES)}) …")
    with running_stack(
        port=options.port, db=options.db, seed=options.seed, broker=options.broker
    ) as stack:
        _announce(stack, options.broker, console)
        # The summary counts what happened from here on: the store may hold earlier runs.
        started_ns = time.time_ns()
        drive_users(stack, options, console)
        console.print("Waiting for the last spans to arrive …")
        wait_for_spans_to_settle(stack.server_url)
        stack.stop_shop()
        wait_for_spans_to_settle(stack.server_url)
        run = RunWindow(start_ns=started_ns, end_ns=time.time_ns())
        render_summary(collect_summary(stack.server_url, run, db=str(stack.db)), console)
        if options.exit_after_summary:
            return
        console.print()
        console.print(
            f"Threadline keeps running at [bold]{stack.server_url}[/] so you can try the "
            "commands above. Press Ctrl-C to stop it."
        )
        while stack.server.alive():
            time.sleep(SERVER_WATCH_S)
        raise DemoError(
            f"the Threadline server stopped (exit code {stack.server.popen.returncode}). "
            f"Last lines of its output:\n{stack.server.log_tail()}"
        )


def _announce(stack: Stack, preference: BrokerPreference, console: Console) -> None:
    console.print(f"  Threadline  {stack.server_url}  (API docs at /api/docs, store {stack.db})")
    for name, url in stack.service_urls.items():
        console.print(f"  {name:<11} {url}")
    hop = _describe(stack.broker, preference)
    console.print(f"  queue hop   orders → fulfillment over {hop}", highlight=False)


def _describe(broker: BrokerSpec, preference: BrokerPreference) -> str:
    if broker.system == "rabbitmq":
        return f"RabbitMQ (queue {broker.address} on {RABBITMQ_HOST}:{RABBITMQ_PORT})"
    why = (
        f", as no RabbitMQ answers on {RABBITMQ_HOST}:{RABBITMQ_PORT}"
        if preference == "auto"
        else ""
    )
    return f"an SQLite queue file{why} ({broker.address})"


def drive_users(stack: Stack, options: DemoOptions, console: Console) -> None:
    """Run the simulated users to the end of the duration, showing progress."""
    driver = UserDriver(stack.gateway_url, options.users, options.duration_s, options.seed)
    started = time.monotonic()
    with UsersProgress(console, options.users, options.duration_s) as progress:
        driver.start()
        try:
            while driver.running():
                progress.show(driver.tally(), time.monotonic() - started)
                time.sleep(PROGRESS_REFRESH_S)
        finally:
            driver.stop()
            driver.join(USERS_FINISH_S)
            progress.show(driver.tally(), time.monotonic() - started)


def wait_for_spans_to_settle(server_url: str) -> int:
    """Wait (bounded) until the stored span count stops growing and the store has
    folded every commit (``/readyz``'s ``unfolded_commits``: error origins are found
    at the fold, and the summary names where errors started); return the count."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    last, steady_since = -1, time.monotonic()
    with httpx.Client(base_url=server_url, timeout=SETTLE_LIMIT_S) as client:
        while time.monotonic() < deadline:
            try:
                count = int(client.get(f"{conventions.API_PREFIX}/stats").json()["spans"])
                unfolded = int(client.get(READY_PATH).json()["unfolded_commits"])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise DemoError(
                    f"the Threadline API at {server_url} stopped answering: {exc}"
                ) from exc
            now = time.monotonic()
            if count != last:
                last, steady_since = count, now
            elif now - steady_since >= SETTLED_AFTER_S and not unfolded:
                break
            time.sleep(SETTLE_POLL_S)
    return last

"""The running demo stack: the Threadline server and the five shop processes.

``running_stack`` starts them all at once on loopback (the server on the port asked
for, the shop on free ports), waits until each answers, and on leaving stops the
shop first, so its last spans reach the server, then the server. Tests use it
directly; ``threadline demo`` wraps a run of simulated users around it.

The server reads a ``threadline.toml`` of the run's own (``THREADLINE_CONFIG``),
which defines the ``checkout`` funnel along the scripted shoppers' path
(``shopper_script``); funnels saved through the API beside the store win over it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from threadline import conventions
from threadline.demo.message_hop import SqliteQueue, choose_broker
from threadline.demo.processes import HOST, ChildProcess, Children, ensure_port_free, free_port
from threadline.demo.shopper_script import demo_funnel_toml
from threadline.demo.wiring import HEALTH_PATH, BrokerPreference, BrokerSpec, ShopWiring
from threadline.settings import CONFIG_FILE_ENV

# Started in this order; each is `python -m threadline.demo.services.<name>`.
SHOP_SERVICES: Final = ("catalog", "payments", "orders", "fulfillment", "gateway")
# Seconds between the services' `threadline.sdk.stats` spans.
STATS_INTERVAL_S: Final = 2.0
# Spans reach the server within this long of finishing, so the demo's counts move live.
EXPORT_DELAY_MS: Final = 200


@dataclass(frozen=True, slots=True)
class Stack:
    """Where everything runs, for the user driver, the summary and tests."""

    server_url: str
    service_urls: dict[str, str]
    broker: BrokerSpec
    db: Path
    server: ChildProcess
    shop: tuple[ChildProcess, ...]
    children: Children

    @property
    def gateway_url(self) -> str:
        return self.service_urls["gateway"]

    def stop_shop(self) -> None:
        """Stop the shop services; each flushes its spans to the server on the way out."""
        self.children.stop(self.shop)


@contextlib.contextmanager
def running_stack(
    *,
    port: int,
    db: Path,
    seed: int,
    broker: BrokerPreference = "auto",
    service_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Stack]:
    """Start server and shop, yield once all answer, and leave no process behind.

    ``service_env`` adds environment variables to named services: how a drill or a
    test breaks one of them (``THREADLINE_ENABLED=false``: a service without tracing;
    ``DROP_MESSAGE_HEADERS_ENV``: a queue hop that loses the trace context).
    """
    extra_env = service_env or {}
    ensure_port_free(port)
    run_dir = Path(tempfile.mkdtemp(prefix="threadline-demo-"))
    children = Children()
    try:
        chosen = choose_broker(broker, run_dir, run_id=uuid.uuid4().hex[:8])
        if chosen.system == "sqlite":
            # Create the queue file before two processes race to create it.
            SqliteQueue(Path(chosen.address)).close()
        server_url = f"http://{HOST}:{port}"
        config = run_dir / "threadline.toml"
        config.write_text(demo_funnel_toml(), encoding="utf-8")
        server = children.spawn(
            "threadline server",
            [
                sys.executable,
                "-m",
                "threadline",
                "serve",
                *("--host", HOST, "--port", str(port)),
                *("--db", str(db)),
            ],
            {**os.environ, CONFIG_FILE_ENV: str(config)},
            run_dir / "server.log",
            ready_url=f"{server_url}{conventions.API_PREFIX}/stats",
            # SIGTERM, not SIGKILL: an orphaned server still closes its store cleanly.
            death_signal=signal.SIGTERM,
        )
        ports = {name: free_port() for name in SHOP_SERVICES}
        service_urls = {name: f"http://{HOST}:{ports[name]}" for name in SHOP_SERVICES}
        wiring = ShopWiring(
            seed=seed,
            catalog_url=service_urls["catalog"],
            orders_url=service_urls["orders"],
            payments_url=service_urls["payments"],
            broker=chosen,
        )
        shop = tuple(
            children.spawn(
                name,
                [
                    sys.executable,
                    "-m",
                    f"threadline.demo.services.{name}",
                    "--port",
                    str(ports[name]),
                ],
                {**_service_env(name, server_url, wiring), **extra_env.get(name, {})},
                run_dir / f"{name}.log",
                ready_url=f"{service_urls[name]}{HEALTH_PATH}",
                # Orphaned, a service would spend its export timeout flushing spans to a
                # server that is going away too: it had better go at once.
                death_signal=signal.SIGKILL,
            )
            for name in SHOP_SERVICES
        )
        children.wait_ready([server, *shop])
        yield Stack(server_url, service_urls, chosen, db, server, shop, children)
    finally:
        with _interrupts_held():
            # The server was started first: stop the rest before it, so their spans land.
            children.stop(children.started[1:])
            children.stop_all()
            shutil.rmtree(run_dir, ignore_errors=True)


def _service_env(name: str, server_url: str, wiring: ShopWiring) -> dict[str, str]:
    return {
        **os.environ,
        **wiring.to_env(),
        "THREADLINE_SERVICE_NAME": name,
        "THREADLINE_ENDPOINT": server_url,
        "THREADLINE_EXPORT_DELAY_MS": str(EXPORT_DELAY_MS),
        # The demo's users are invented, so readable ids hide nothing and make the
        # summary and `threadline journey --user ada` useful.
        "THREADLINE_PSEUDONYMIZE_USER_ID": "false",
        # A demo lasts seconds to minutes: report the SDK's export figures often enough
        # that each service's page shows them (the default interval is a minute).
        "THREADLINE_STATS_INTERVAL_S": str(STATS_INTERVAL_S),
        # Readiness polls are not part of any user's story.
        "OTEL_PYTHON_EXCLUDED_URLS": HEALTH_PATH,
        "PYTHONUNBUFFERED": "1",
    }


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Let cleanup finish even if Ctrl-C is pressed again; it is bounded anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

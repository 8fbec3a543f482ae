"""The two-service shop drills probe (``tests/server/drills/drill_shop.py``), started as
real processes instrumented with the SDK and exporting to a given server."""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from support.processes import ready_script

SHOP: Final = Path(__file__).resolve().parents[1] / "server" / "drills" / "drill_shop.py"


@dataclass(frozen=True, slots=True)
class Shop:
    checkout_url: str
    payments_url: str


def shop_environ(server_url: str) -> dict[str, str]:
    """This process's environment without Threadline settings, exporting to the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        THREADLINE_ENDPOINT=server_url,
        THREADLINE_EXPORT_DELAY_MS="50",
    )
    return env


def start_shop(stack: ExitStack, server_url: str, logs: Path) -> Shop:
    """payments, then checkout calling it; both stop when ``stack`` closes."""
    env = shop_environ(server_url)
    _, payments = stack.enter_context(
        ready_script(SHOP, "payments", env=env, log=logs / "payments.log")
    )
    _, checkout = stack.enter_context(
        ready_script(SHOP, "checkout", payments["url"], env=env, log=logs / "checkout.log")
    )
    return Shop(checkout_url=checkout["url"], payments_url=payments["url"])

"""A real server with drills running, and the two-service shop its probes hit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from support.processes import ready_script

SHOP: Final = Path(__file__).parent / "drill_shop.py"


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
    env = shop_environ(server_url)
    _, payments = stack.enter_context(
        ready_script(SHOP, "payments", env=env, log=logs / "payments.log")
    )
    _, checkout = stack.enter_context(
        ready_script(SHOP, "checkout", payments["url"], env=env, log=logs / "checkout.log")
    )
    return Shop(checkout_url=checkout["url"], payments_url=payments["url"])


@pytest.fixture
def shop_stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack

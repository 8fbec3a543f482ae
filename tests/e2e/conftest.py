"""Fixtures for the end-to-end demo tests: one real shop run per broker, and /proc probes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.missing import require_port
from threadline.demo.processes import free_port
from threadline.demo.run import wait_for_spans_to_settle
from threadline.demo.stack import Stack, running_stack
from threadline.demo.users import JourneyRecord, UserDriver

# With this seed the first journey of each of three users (shoppers 92, 159 and 26
# of ``shopper_script``) ends in a checkout, done in about three seconds: ada pays
# through the slow provider and looks at her order, alan pays and looks at his,
# barbara's charge fails and she leaves.
SEED = 92
USERS = 3
DURATION_S = 5.0
USERS_FINISH_S = 20.0


@dataclass(frozen=True, slots=True)
class ShopRun:
    """A finished run of simulated users, with the server still up to be asked."""

    stack: Stack
    records: tuple[JourneyRecord, ...]
    api: httpx.Client

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module", params=["rabbitmq", "sqlite"])
def shop_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ShopRun]:
    broker = request.param
    if broker == "rabbitmq":
        require_port("RabbitMQ", 5672)
    db = tmp_path_factory.mktemp(f"demo-{broker}") / "threadline.duckdb"
    with running_stack(port=free_port(), db=db, seed=SEED, broker=broker) as stack:
        driver = UserDriver(stack.gateway_url, USERS, DURATION_S, SEED)
        driver.start()
        driver.join(DURATION_S + USERS_FINISH_S)
        assert not driver.running(), "simulated users did not finish"
        wait_for_spans_to_settle(stack.server_url)
        stack.stop_shop()
        wait_for_spans_to_settle(stack.server_url)
        with httpx.Client(base_url=f"{stack.server_url}/api", timeout=15.0) as api:
            yield ShopRun(stack, driver.records(), api)


def children_of(pid: int) -> set[int]:
    """Pids whose parent is ``pid``, from /proc."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

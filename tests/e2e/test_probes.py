"""Probes against the demo's real services: a whole journey passes; a service without
tracing, a queue hop that drops its headers and a step over budget each fail with the
right diagnosis; synthetic traffic stays out of the SLO counts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from threadline.demo.message_tracing import DROP_MESSAGE_HEADERS_ENV
from threadline.demo.processes import free_port
from threadline.demo.run import wait_for_spans_to_settle
from threadline.demo.services.payments import decide_charge
from threadline.demo.stack import Stack, running_stack
from threadline.probing.runner import ProbeRun
from threadline.testing import ProbeFailed

SEED: Final = 12
ALL_SERVICES: Final = ("gateway", "catalog", "orders", "payments", "fulfillment")


def card(*, slow: bool) -> str:
    """A card whose charge succeeds, through the slow provider or not."""
    for number in range(1000):
        token = f"card-{number}"
        decision = decide_charge(SEED, token)
        if not decision.fails and (decision.delay_s > 1.0) == slow:
            return token
    raise AssertionError("no such card under this seed")


def probe_file(directory: Path, stack: Stack, *, card_token: str, budget: str = "10s") -> Path:
    """Add to cart, then check out: the journey through every service and the queue."""
    gateway = stack.gateway_url
    path = directory / f"checkout-{card_token}.toml"
    path.write_text(
        f"""
name = "checkout"
services = {json.dumps(list(ALL_SERVICES))}

[[steps]]
name = "add to cart"
method = "POST"
url = "{gateway}/cart"
headers = {{ "Content-Type" = "application/json", "X-Session-Id" = "probe-{card_token}" }}
body = '{{"product_id": "p-101"}}'
status = 201

[[steps]]
name = "checkout"
method = "POST"
url = "{gateway}/checkout"
headers = {{ "Content-Type" = "application/json", "X-Session-Id" = "probe-{card_token}" }}
body = '{{"card_token": "{card_token}"}}'
status = 201
budget = "{budget}"
""",
        encoding="utf-8",
    )
    return path


def probe(stack: Stack, plan: Path) -> tuple[int, dict[str, Any]]:
    """Run `threadline probe --file plan --json` as a user would; exit status and verdict."""
    ran = subprocess.run(
        [sys.executable, "-m", "threadline", "probe", "--file", str(plan), "--json",
         "--server", stack.server_url, "--wait", "20s"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.stdout, ran.stderr
    return ran.returncode, json.loads(ran.stdout)


# One shop per set of service settings, shared by the tests that ask for the same: each
# probe is its own journey, and the shop holds nothing but probes.
@pytest.fixture(scope="module")
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Path]]:
    env: Mapping[str, Mapping[str, str]] = getattr(request, "param", {})
    directory = tmp_path_factory.mktemp("shop")
    with running_stack(
        port=free_port(), db=directory / "t.duckdb", seed=SEED, broker="sqlite", service_env=env
    ) as stack:
        yield stack, directory


def test_a_whole_checkout_probe_passes_and_stays_out_of_red(
    shop: tuple[Stack, Path], threadline_probe: Callable[..., ProbeRun]
) -> None:
    """Every service joins both steps' traces, from the command line and from the pytest
    fixture; the probes' spans are marked synthetic and RED counts none of them."""
    stack, directory = shop
    threadline_probe(
        probe_file(directory, stack, card_token=card(slow=False)), server=stack.server_url
    )
    status, verdict = probe(stack, probe_file(directory, stack, card_token=card(slow=False)))
    assert (status, verdict["problems"]) == (0, [])
    assert set(verdict["services"]) == set(ALL_SERVICES)
    with httpx.Client(base_url=f"{stack.server_url}/api", timeout=15) as api:
        for trace_id in verdict["trace_ids"]:
            spans = api.get(f"/traces/{trace_id}").json()["spans"]
            assert {s["attributes"].get("journey.synthetic") for s in spans} == {"true"}
            assert {s["journey_id"] for s in spans} == {verdict["journey_id"]}
        wait_for_spans_to_settle(stack.server_url)
        # Only probes ran: the store holds their spans, and RED and the map count none.
        assert api.get("/stats").json()["spans"] > 0
        assert api.get("/operations", params={"window": "1h"}).json()["operations"] == []
        assert api.get("/service-map", params={"window": "1h"}).json()["services"] == []


def test_a_step_over_its_budget_fails_naming_the_slow_service(shop: tuple[Stack, Path]) -> None:
    """A checkout through the slow provider takes over 1 s: over a 500 ms budget, and
    payments is named as the slowest service below the gateway."""
    stack, directory = shop
    plan = probe_file(directory, stack, card_token=card(slow=True), budget="500ms")
    status, verdict = probe(stack, plan)
    assert status == 1
    assert len(verdict["problems"]) == 1, verdict["problems"]
    (problem,) = verdict["problems"]
    assert problem["check"] == "budget"
    assert problem["step"] == "checkout"
    assert problem["between"][0] == "gateway"


@pytest.mark.parametrize("shop", [{"payments": {"THREADLINE_ENABLED": "false"}}], indirect=True)
def test_a_service_without_tracing_is_named_as_the_broken_hop(shop: tuple[Stack, Path]) -> None:
    """payments traces nothing: orders' call to it is the broken hop, payments is missing."""
    stack, directory = shop
    status, verdict = probe(stack, probe_file(directory, stack, card_token=card(slow=False)))
    assert status == 1
    checks = {(p["check"], tuple(p["between"] or ())) for p in verdict["problems"]}
    assert any(c == "broken-hop" and between[:1] == ("orders",) for c, between in checks), checks
    assert ("missing-service", ()) in checks
    assert "payments" not in verdict["services"]


@pytest.mark.parametrize("shop", [{"payments": {"THREADLINE_ENABLED": "false"}}], indirect=True)
def test_the_pytest_fixture_fails_the_test_with_the_verdict(
    shop: tuple[Stack, Path], threadline_probe: Callable[..., ProbeRun]
) -> None:
    """The fixture raises ProbeFailed whose message names the broken hop from orders."""
    stack, directory = shop
    plan = probe_file(directory, stack, card_token=card(slow=False))
    with pytest.raises(ProbeFailed, match=r"broken-hop \[orders -> "):
        threadline_probe(plan, server=stack.server_url)


@pytest.mark.parametrize("shop", [{"orders": {DROP_MESSAGE_HEADERS_ENV: "1"}}], indirect=True)
def test_a_queue_hop_without_headers_is_a_broken_message_hop(shop: tuple[Stack, Path]) -> None:
    """orders publishes without headers: the hop from orders is broken, fulfillment missing."""
    stack, directory = shop
    status, verdict = probe(stack, probe_file(directory, stack, card_token=card(slow=False)))
    assert status == 1
    hops = [p for p in verdict["problems"] if p["check"] == "broken-message-hop"]
    assert [p["between"][0] for p in hops] == ["orders"]
    assert "fulfillment" not in verdict["services"]

"""End to end: a probe set through ``/api/probes`` runs on its interval against a real
two-service shop exporting to a real server; when checkout stops propagating the
trace context the drill fails, a webhook receiver gets the page naming the two
services and the failing trace, and when propagation comes back it gets the resolve."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx

from support.alert_receivers import WEBHOOK_V4, check, receiver
from support.drill_services import Shop, start_shop
from support.live_server import live_server

WAIT_S: Final = 60.0
POLL_S: Final = 0.2
T = TypeVar("T")


def probes(shop: Shop, *, interval: str = "1s", **extra: object) -> dict[str, Any]:
    return {
        "probes": [
            {
                "name": "checkout",
                "interval": interval,
                "wait": "5s",
                "services": ["checkout", "payments"],
                "steps": [
                    {
                        "name": "pay",
                        "method": "POST",
                        "url": f"{shop.checkout_url}/pay",
                        "budget": "5s",
                    }
                ],
                **extra,
            }
        ]
    }


def eventually(find: Callable[[], T | None], what: str) -> T:
    """``find()``'s first non-None answer, polling up to WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = find()
        if found is not None:
            return found
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


def drill(api: httpx.Client) -> dict[str, Any]:
    (only,) = api.get("/probes/results", params={"probe": "checkout"}).json()["drills"]
    result: dict[str, Any] = only
    return result


def test_a_failing_drill_pages_through_a_webhook_and_recovery_resolves_it(
    tmp_path: Path, shop_stack: ExitStack
) -> None:
    """Passing runs page nobody; broken propagation fires one page whose summary names
    checkout and payments and whose example trace is the failing one; a pass resolves
    the same alert (same fingerprint)."""
    with (
        receiver() as (hook_url, inbox),
        live_server(tmp_path / "spans.duckdb", lifespan=True, alert_webhook_urls=hook_url) as srv,
        httpx.Client(base_url=srv.api_url, timeout=15) as api,
    ):
        shop = start_shop(shop_stack, srv.url, tmp_path)
        assert api.put("/probes", json=probes(shop)).status_code == 200

        passed = eventually(
            lambda: (
                drill(api)["last_run"] if (drill(api)["last_run"] or {}).get("passed") else None
            ),
            "a passing run",
        )
        assert set(passed["services"]) == {"checkout", "payments"}
        assert inbox.received == []

        assert httpx.put(f"{shop.checkout_url}/propagation", content=b"off").status_code == 200
        (firing,) = inbox.wait_for(1, timeout_s=WAIT_S)
        assert check(firing.body, WEBHOOK_V4) == []
        (alert,) = firing.body["alerts"]
        assert alert["status"] == "firing"
        assert alert["labels"] | {"alertname": "DrillFailing"} == {
            "alertname": "DrillFailing",
            "drill": "checkout",
            "severity": "page",
            "service": "checkout",
            "callee": "payments",
            "check": "broken-hop",
        }
        summary = alert["annotations"]["summary"]
        assert summary.startswith("propagation broken between checkout and payments since "), (
            summary
        )
        assert "broken-hop [checkout -> payments]" in alert["annotations"]["description"]
        trace_id = alert["annotations"]["example_trace_ids"]
        spans = api.get(f"/traces/{trace_id}").json()["spans"]
        assert {(s["service"], s["kind"]) for s in spans} >= {("checkout", "client")}
        assert "payments" not in {s["service"] for s in spans}

        state = drill(api)
        assert state["last_failure"]["trace_id"] == trace_id
        assert (
            state["last_failure"]["summary"] == "propagation broken between checkout and payments"
        )
        assert state["alert"]["state"] == "firing"
        listed = api.get("/alerts").json()["firing"]
        assert [(a["slo"], a["alert"]) for a in listed] == [("checkout", "drill")]

        assert httpx.put(f"{shop.checkout_url}/propagation", content=b"on").status_code == 200
        received = inbox.wait_for(2, timeout_s=WAIT_S)
        assert len(received) == 2, [r.body["status"] for r in received]
        (resolved,) = received[1].body["alerts"]
        assert resolved["status"] == "resolved"
        assert resolved["fingerprint"] == alert["fingerprint"]
        assert drill(api)["alert"]["state"] == "resolved"
        # Another failing run after that would be a new incident: nothing more was sent.
        time.sleep(1.0)
        assert len(inbox.received) == 2

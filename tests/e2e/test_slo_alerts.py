"""End to end: an SLO set through the API, an hour of backdated checkout traffic with
30% failures sent over OTLP/HTTP to a real server, and a firing page within a few
evaluation intervals, whose example traces exist and failed: handed to the ``deliver``
hook of an in-process server, and posted by `threadline serve` to a webhook receiver
process."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.alert_receivers import WEBHOOK_V4, check
from support.live_server import live_server
from support.processes import ready_script, threadline_serve
from threadline.server.alerting.notice import AlertNotice, AlertStatus

pytestmark = pytest.mark.e2e

MINUTE_NS: Final = 60_000_000_000
PER_MINUTE: Final = 20
INTERVAL_S: Final = 0.5
WAIT_S: Final = 30.0
RECEIVER: Final = Path(__file__).parent / "webhook_receiver.py"
SLO: Final = {
    "slos": [
        {
            "name": "checkout-errors",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.99,
            "window": "30d",
            "indicator": "errors",
        }
    ]
}


class Inbox:
    def __init__(self) -> None:
        self.notices: list[AlertNotice] = []
        self.arrived = threading.Condition()

    def __call__(self, notices: Sequence[AlertNotice]) -> None:
        with self.arrived:
            self.notices.extend(notices)
            self.arrived.notify_all()

    def wait_for_page(self, timeout_s: float) -> AlertNotice | None:
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while True:
                for notice in self.notices:
                    if notice.labels.get("severity") == "page" and (
                        notice.status is AlertStatus.FIRING
                    ):
                        return notice
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)


def an_hour_of_traffic(now_ns: int, *, minutes_per_request: int = 1) -> list[bytes]:
    """OTLP JSON requests of the last hour, one per ``minutes_per_request`` minutes: each
    minute 20 checkouts, 6 of them failed."""
    bodies = []
    spans: list[dict[str, Any]] = []
    for minute in range(60):
        for n in range(PER_MINUTE):
            start = now_ns - (60 - minute) * MINUTE_NS + n * 1_000_000_000
            failed = n < PER_MINUTE * 3 // 10
            spans.append(
                {
                    "traceId": f"{minute + 1:016x}{n + 1:016x}",
                    "spanId": f"{n + 1:016x}",
                    "name": "POST /checkout",
                    "kind": 2,
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(start + 80_000_000),
                    "status": {"code": 2 if failed else 1},
                }
            )
        if (minute + 1) % minutes_per_request:
            continue
        service = {"key": "service.name", "value": {"stringValue": "shop"}}
        document = {
            "resourceSpans": [
                {"resource": {"attributes": [service]}, "scopeSpans": [{"spans": spans}]}
            ]
        }
        bodies.append(json.dumps(document).encode())
        spans = []
    return bodies


def test_a_burning_slo_pages_with_failed_example_traces(tmp_path: Path) -> None:
    """30% failing at a 99% objective burns 30x: the fast page fires on the next ticks."""
    inbox = Inbox()
    with (
        live_server(
            tmp_path / "spans.duckdb",
            lifespan=True,
            deliver=inbox,
            slo_evaluation_interval_s=INTERVAL_S,
        ) as server,
        httpx.Client(timeout=30) as client,
    ):
        assert client.put(f"{server.api_url}/slos", json=SLO).status_code == 200
        for body in an_hour_of_traffic(time.time_ns()):
            sent = client.post(
                server.traces_url, content=body, headers={"Content-Type": "application/json"}
            )
            assert sent.status_code == 200, sent.text
        page = inbox.wait_for_page(WAIT_S)
        assert page is not None, "no page within 30 s"
        assert page.labels["slo"] == "checkout-errors"
        # The 6h/30m rule may fire first, while the last minutes are still being sent;
        # a window's edge minute may hold part of a traffic minute, so about 30x.
        burns = re.search(r"burns ([0-9.]+)x over", page.annotations["summary"])
        assert burns is not None, page.annotations["summary"]
        assert float(burns.group(1)) == pytest.approx(30.0, abs=1.0)
        assert page.example_traces
        for example in page.example_traces:
            trace = client.get(f"{server.api_url}/traces/{example.trace_id}")
            assert trace.status_code == 200
            assert example.error
            assert any(span["status"] == "error" for span in trace.json()["spans"])
        alerts = client.get(f"{server.api_url}/alerts").json()
        assert any(a["slo"] == "checkout-errors" for a in alerts["firing"])


def webhook_payloads(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def first_page(path: Path, timeout_s: float) -> dict[str, Any] | None:
    """The first firing page alert in the receiver's file, waiting up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for received in webhook_payloads(path):
            for alert in received["body"]["alerts"]:
                if alert["status"] == "firing" and alert["labels"]["severity"] == "page":
                    return {"payload": received["body"], "alert": alert, "path": received["path"]}
        time.sleep(0.1)
    return None


def test_a_webhook_receiver_process_gets_the_page_from_threadline_serve(tmp_path: Path) -> None:
    """`threadline serve` with alert_webhook_urls, an hour of backdated OTLP traffic with
    30% failures: the receiver process gets an Alertmanager v4 payload of the firing page
    whose example traces exist and failed, and whose links open the SLO and trace pages."""
    received = tmp_path / "received.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "THREADLINE_SLO_EVALUATION_INTERVAL_S": str(INTERVAL_S),
    }
    with ready_script(RECEIVER, str(received), env=env, log=tmp_path / "receiver.log") as (
        _,
        ready,
    ):
        hook = f"http://127.0.0.1:{ready['port']}/alerts"
        with (
            threadline_serve(tmp_path, env={**env, "THREADLINE_ALERT_WEBHOOK_URLS": hook}) as serve,
            httpx.Client(timeout=30) as client,
        ):
            assert client.put(f"{serve.url}/api/slos", json=SLO).status_code == 200
            # Four requests: each write of `threadline serve` is durable before its 200.
            for body in an_hour_of_traffic(time.time_ns(), minutes_per_request=15):
                sent = client.post(
                    f"{serve.url}/v1/traces",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                assert sent.status_code == 200, sent.text
            page = first_page(received, WAIT_S)
            assert page is not None, f"no page within {WAIT_S} s: {serve.log.read_text()[-2000:]}"
            assert page["path"] == "/alerts"
            assert check(page["payload"], WEBHOOK_V4) == []
            alert = page["alert"]
            assert alert["labels"]["slo"] == "checkout-errors"
            assert alert["labels"]["alertname"] == "SLOBurnRate"
            assert alert["generatorURL"] == f"{serve.url}/slos/checkout-errors"
            assert client.get(alert["generatorURL"]).status_code == 200
            urls = alert["annotations"]["example_traces"].split()
            assert urls
            for url in urls:
                trace_id = url.rsplit("/", 1)[1]
                assert url == f"{serve.url}/trace/{trace_id}"
                trace = client.get(f"{serve.url}/api/traces/{trace_id}")
                assert trace.status_code == 200
                assert any(span["status"] == "error" for span in trace.json()["spans"])
                assert client.get(url).status_code == 200

"""`threadline doctor`'s alert-delivery check against a real server and its receivers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import pytest

from support.alert_receivers import free_port
from support.live_server import live_server
from threadline.cli.doctor_alerts import SECTION, alert_delivery_findings
from threadline.server.alerting.notice import AlertNotice, AlertStatus

WAIT_S: Final = 30.0
VIEWER: Final = "viewer-token-0123456789"


def test_a_failing_receiver_is_a_warning_with_its_last_error(tmp_path: Path) -> None:
    """A webhook URL nobody listens on shows as a warning naming the connection error."""
    closed = f"http://127.0.0.1:{free_port()}/hook"
    with live_server(tmp_path / "spans.duckdb", alert_webhook_urls=closed) as server:
        dispatcher = server.app.state.alert_dispatcher
        dispatcher.notify(
            [
                AlertNotice(
                    status=AlertStatus.FIRING,
                    labels={"alertname": "SLOBurnRate", "slo": "s", "service": "shop",
                            "severity": "page"},
                    annotations={"summary": "burning"},
                    starts_at_ns=time.time_ns(),
                    generator_url=f"{server.url}/slos/s",
                )
            ]
        )  # fmt: skip
        deadline = time.monotonic() + WAIT_S
        while not dispatcher.status().receivers[0].retries and time.monotonic() < deadline:
            time.sleep(0.05)
        (finding,) = alert_delivery_findings(server.url)
    assert finding.section == SECTION
    assert finding.severity == "warning"
    assert finding.subject.startswith("webhook-1 (http://127.0.0.1:")
    assert "0 sent, " in finding.detail
    assert "last error: Connect" in finding.detail


def test_no_receivers_and_no_token_are_information(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without receivers, or without a viewer token, the check says so and warns of nothing."""
    monkeypatch.delenv("THREADLINE_TOKEN", raising=False)
    with live_server(tmp_path / "a.duckdb") as server:
        (none,) = alert_delivery_findings(server.url)
    assert none.severity == "info"
    assert none.detail.startswith("none configured")
    with live_server(tmp_path / "b.duckdb", tokens=f"viewer:{VIEWER}") as server:
        (refused,) = alert_delivery_findings(server.url)
        monkeypatch.setenv("THREADLINE_TOKEN", VIEWER)
        (allowed,) = alert_delivery_findings(server.url)
    assert refused.severity == "info"
    assert "viewer token in THREADLINE_TOKEN" in refused.detail
    assert allowed.detail.startswith("none configured")
    (unreachable,) = alert_delivery_findings(f"http://127.0.0.1:{free_port()}")
    assert unreachable.detail == "not checked: the server does not answer"

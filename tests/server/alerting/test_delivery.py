"""Alert delivery to real HTTP receivers on 127.0.0.1: shapes, retries, never blocking."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Final

import pytest

from support.alert_receivers import (
    LABEL_NAME,
    POSTABLE_ALERTS,
    WEBHOOK_V4,
    ReceiverState,
    check,
    free_port,
    receiver,
)
from threadline.server.alerting.delivery import Dispatcher, RetryPolicy
from threadline.server.alerting.delivery import receivers as receivers_module
from threadline.server.alerting.delivery.formats import ZERO_TIME
from threadline.server.alerting.notice import AlertNotice, AlertStatus, ExampleTrace
from threadline.settings import ConfigError, ServerSettings, load

FAST: Final = RetryPolicy(initial_s=0.05, max_s=0.2, deadline_s=30.0, timeout_s=5.0)
WAIT_S: Final = 10.0
START_NS: Final = 1_764_000_000_000_000_000
EXTERNAL: Final = "http://threadline.test:4318"
TRACE_A: Final = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B: Final = "00f067aa0ba902b7a3ce929d0e0e4736"


def notice(
    status: AlertStatus = AlertStatus.FIRING,
    *,
    slo: str = "checkout-errors",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> AlertNotice:
    return AlertNotice(
        status=status,
        labels=labels
        or {"alertname": "SLOBurnRate", "slo": slo, "service": "shop", "severity": "page"},
        annotations=annotations
        or {
            "summary": "checkout-errors burns its 30d budget 16.2x too fast",
            "burn_1h": "16.2",
            "burn_5m": "18.9",
        },
        starts_at_ns=START_NS,
        generator_url=f"{EXTERNAL}/slos/{slo}",
        ends_at_ns=START_NS + 600_000_000_000 if status is AlertStatus.RESOLVED else None,
        example_traces=(
            ExampleTrace(TRACE_A, f"{EXTERNAL}/traces/{TRACE_A}", 812.0, True),
            ExampleTrace(TRACE_B, f"{EXTERNAL}/traces/{TRACE_B}", 640.0, True),
        ),
    )


def eventually(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.02)


def webhook_dispatcher(url: str, **kwargs: object) -> Dispatcher:
    hook = receivers_module.webhook(url, name="webhook-1", external_url=EXTERNAL)
    return Dispatcher([hook], policy=FAST, **kwargs)  # type: ignore[arg-type]


def test_webhook_payload_has_alertmanagers_documented_shape() -> None:
    """A firing and a resolved alert each reach the webhook as a version-4 payload."""
    with receiver() as (url, state):
        dispatcher = webhook_dispatcher(url + "/hook")
        dispatcher.start()
        try:
            dispatcher.notify([notice()])
            dispatcher.notify([notice(AlertStatus.RESOLVED)])
            got = state.wait_for(2)
        finally:
            dispatcher.stop()
    assert len(got) == 2
    for item in got:
        assert item.path == "/hook"
        assert check(item.body, WEBHOOK_V4) == []
    firing, resolved = got[0].body, got[1].body
    assert firing["status"] == "firing"
    assert firing["groupLabels"] == {"alertname": "SLOBurnRate", "slo": "checkout-errors"}
    assert firing["externalURL"] == EXTERNAL
    alert = firing["alerts"][0]
    assert {"alertname", "slo", "service", "severity"} <= set(alert["labels"])
    assert alert["endsAt"] == ZERO_TIME
    assert alert["startsAt"] == "2025-11-24T16:00:00.000Z"
    assert alert["fingerprint"] == notice().fingerprint
    assert alert["annotations"]["example_trace_ids"] == f"{TRACE_A},{TRACE_B}"
    assert f"{EXTERNAL}/traces/{TRACE_A}" in alert["annotations"]["example_traces"]
    assert alert["generatorURL"] == f"{EXTERNAL}/slos/checkout-errors"
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2025-11-24T16:10:00.000Z"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]


def test_webhook_groups_alerts_by_alertname_and_slo() -> None:
    """Notices of two SLOs in one tick arrive as two payloads, one per group."""
    with receiver() as (url, state):
        dispatcher = webhook_dispatcher(url)
        dispatcher.start()
        try:
            dispatcher.notify([notice(slo="a"), notice(slo="b"), notice(slo="a")])
            got = state.wait_for(2)
        finally:
            dispatcher.stop()
    assert sorted(len(g.body["alerts"]) for g in got) == [1, 2]
    for item in got:
        assert check(item.body, WEBHOOK_V4) == []
        assert item.body["commonLabels"]["slo"] == item.body["groupLabels"]["slo"]


def test_alertmanager_gets_postable_alerts_resent_while_firing_then_ended() -> None:
    """/api/v2/alerts receives the alert again every interval, then once with its end."""
    with receiver() as (url, state):
        am = receivers_module.alertmanager(url, resend_s=0.2)
        dispatcher = Dispatcher([am], policy=FAST)
        dispatcher.start()
        try:
            dispatcher.notify([notice()])
            firing = state.wait_for(3)
            dispatcher.notify([notice(AlertStatus.RESOLVED)])

            def resolved_arrived() -> bool:
                return any(
                    r.body[0]["endsAt"] == "2025-11-24T16:10:00.000Z" for r in state.wait_for(0)
                )

            eventually(resolved_arrived)
            count = len(state.wait_for(0))
            time.sleep(0.6)  # three re-send intervals: nothing more is sent
            after = state.wait_for(0)
        finally:
            dispatcher.stop()
    assert len(firing) >= 3
    for item in after:
        assert item.path == "/api/v2/alerts"
        assert check(item.body, POSTABLE_ALERTS) == []
        assert all(LABEL_NAME.match(name) for name in item.body[0]["labels"])
    # A firing alert's end lies ahead, so the Alertmanager keeps it until re-sent.
    assert firing[0].body[0]["endsAt"] > firing[0].body[0]["startsAt"]
    assert len(after) == count
    assert after[-1].body[0]["endsAt"] == "2025-11-24T16:10:00.000Z"
    assert dispatcher.status().receivers[0].firing == 0


def test_a_receiver_that_is_down_then_up_gets_the_alert() -> None:
    """Sends to a closed port are retried with backoff until the receiver starts."""
    port = free_port()
    dispatcher = webhook_dispatcher(f"http://127.0.0.1:{port}/hook")
    dispatcher.start()
    try:
        dispatcher.notify([notice()])
        eventually(lambda: dispatcher.status().receivers[0].retries >= 2)
        down = dispatcher.status().receivers[0]
        assert not down.healthy
        assert "Connect" in down.last_error
        with receiver(port=port) as (_, state):
            got = state.wait_for(1)
            eventually(lambda: dispatcher.status().receivers[0].sent == 1)
    finally:
        dispatcher.stop()
    assert check(got[0].body, WEBHOOK_V4) == []
    up = dispatcher.status().receivers[0]
    assert (up.sent, up.failed, up.dropped) == (1, 0, 0)
    assert up.healthy
    assert dispatcher.status().to_json()["healthy"] is True


def test_503_answers_are_retried_and_a_400_is_final() -> None:
    """A 503 is tried again; a 400 is recorded as a failure without retries."""
    with receiver(ReceiverState(fail_first=2)) as (url, state):
        dispatcher = webhook_dispatcher(url)
        dispatcher.start()
        try:
            dispatcher.notify([notice()])
            state.wait_for(1)
            eventually(lambda: dispatcher.status().receivers[0].sent == 1)
        finally:
            dispatcher.stop()
    assert dispatcher.status().receivers[0].retries == 2
    with receiver(ReceiverState(fail_first=1, fail_status=400)) as (url, state):
        dispatcher = webhook_dispatcher(url)
        dispatcher.start()
        try:
            dispatcher.notify([notice()])
            eventually(lambda: dispatcher.status().receivers[0].failed == 1)
        finally:
            dispatcher.stop()
    refused = dispatcher.status().receivers[0]
    assert (refused.retries, refused.sent) == (0, 0)
    assert refused.last_error.startswith("HTTP 400")
    assert not dispatcher.status().healthy


def test_a_slow_receiver_blocks_neither_the_caller_nor_other_receivers() -> None:
    """While Slack holds its request, notify returns and the webhook gets its alert."""
    release = threading.Event()
    with (
        receiver(ReceiverState(hold=release)) as (slow_url, slow),
        receiver() as (fast_url, fast),
    ):
        dispatcher = Dispatcher(
            [
                receivers_module.slack_webhook(slow_url),
                receivers_module.webhook(fast_url, name="webhook-1", external_url=EXTERNAL),
            ],
            policy=FAST,
            queue_size=2,
        )
        dispatcher.start()
        try:
            dispatcher.notify([notice()])
            assert slow.entered.wait(WAIT_S)
            # Slack's worker is stuck in its request: more notices still return at once,
            # and beyond its queue they are dropped and counted rather than waited for.
            for _ in range(5):
                dispatcher.notify([notice()])
            assert fast.wait_for(6)[0].body["status"] == "firing"
            assert not release.is_set()
            held = dispatcher.status().receivers[0]
            assert held.dropped == 3
            assert held.queued == 2
        finally:
            release.set()
            dispatcher.stop()
    assert len(slow.wait_for(1)) >= 1


HOSTILE: Final = {
    "alertname": "SLOBurnRate",
    "slo": "<!channel> <script>alert('x')</script>",
    "service": "shop\x1b[31m\x00\nline2 <https://evil.test|click> & more",
    "severity": "page",
}


def test_slack_message_escapes_hostile_label_values() -> None:
    """Markup, mentions, links and control characters in labels reach Slack inert."""
    hostile = notice(
        labels=HOSTILE,
        annotations={"summary": "<b>burn</b> & <!here>", "burn_1h": "16.2\x07"},
    )
    with receiver() as (url, state):
        dispatcher = Dispatcher([receivers_module.slack_webhook(url)], policy=FAST)
        dispatcher.start()
        try:
            dispatcher.notify([hostile])
            body = state.wait_for(1)[0].body
        finally:
            dispatcher.stop()
    text = body["text"]
    everything = [text] + [repr(block) for block in body["blocks"]]
    for rendered in everything:
        assert "<!channel>" not in rendered
        assert "<!here>" not in rendered
        assert "<script>" not in rendered
        assert "<https://evil" not in rendered
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", rendered)
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in text
    assert "&lt;!channel&gt;" in text
    assert "&amp; more" in text
    # The only links are ours: the SLO page and the example traces.
    targets = re.findall(r"<([^|>]*)\|", text)
    assert targets[0].startswith(f"{EXTERNAL}/slos/")
    assert f"{EXTERNAL}/traces/{TRACE_A}" in targets
    assert all(t.startswith(EXTERNAL) for t in targets)
    assert "burn_1h" in text
    assert "16.2" in text
    header = body["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"


def test_receivers_come_from_settings_and_a_bad_url_names_its_setting() -> None:
    """Comma-separated webhook URLs from the environment; a bad URL is a ConfigError."""
    settings = load(
        ServerSettings,
        environ={
            "THREADLINE_ALERT_WEBHOOK_URLS": "http://127.0.0.1:9/a, http://127.0.0.1:9/b",
            "THREADLINE_ALERTMANAGER_URL": "http://127.0.0.1:9093/",
            "THREADLINE_SLACK_WEBHOOK_URL": "https://hooks.slack.test/services/T/B/secret",
        },
        config_file=None,
    )
    made = Dispatcher.from_settings(settings).receivers
    assert [r.name for r in made] == ["webhook-1", "webhook-2", "alertmanager", "slack"]
    assert made[2].url == "http://127.0.0.1:9093/api/v2/alerts"
    # The Slack URL is a secret: status shows its host only.
    assert made[3].display_url == "https://hooks.slack.test"
    with pytest.raises(ConfigError, match="alert_webhook_urls"):
        Dispatcher.from_settings(ServerSettings(alert_webhook_urls="ftp://x/y"))
    with pytest.raises(ConfigError, match="slack_webhook_url"):
        Dispatcher.from_settings(ServerSettings(slack_webhook_url="hooks.slack.com/x"))

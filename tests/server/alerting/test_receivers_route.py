"""``GET /api/alerts/receivers`` answers in the shape ``/api/openapi.json`` declares."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.live_server import live_server
from threadline.server.api.alert_delivery_routes import DeliveryAnswer


def test_receivers_answer_matches_its_declared_model(tmp_path: Path) -> None:
    """Configured receivers are listed, their secret URL paths hidden, in the declared shape."""
    with live_server(
        tmp_path / "spans.duckdb",
        alert_webhook_urls="http://127.0.0.1:9/a",
        slack_webhook_url="https://hooks.slack.test/services/T/B/secret",
    ) as server:
        answer = httpx.get(f"{server.api_url}/alerts/receivers").json()
        schema = httpx.get(f"{server.api_url}/openapi.json").json()
    parsed = DeliveryAnswer.model_validate(answer)
    assert [(r.name, r.url) for r in parsed.receivers] == [
        ("webhook-1", "http://127.0.0.1:9"),
        ("slack", "https://hooks.slack.test"),
    ]
    assert "secret" not in str(answer)
    assert parsed.healthy
    ok = schema["paths"]["/api/alerts/receivers"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/DeliveryAnswer")

"""MQTT v5 (real Mosquitto on 127.0.0.1:1883): context in PUBLISH user properties."""

from __future__ import annotations

import queue
from typing import Any

from opentelemetry import baggage
from opentelemetry.trace import SpanKind

import threadline
from sdk.integrations.conftest import require_broker
from support.missing import require_module
from threadline.sdk.integrations import mqtt
from threadline.testing import SpanCapture, assert_one_trace

paho_client = require_module("paho.mqtt.client")


def _client() -> Any:
    client = paho_client.Client(
        paho_client.CallbackAPIVersion.VERSION2, protocol=paho_client.MQTTv5
    )
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    return client


def test_subscriber_continues_trace_and_journey(
    threadline_spans: SpanCapture, unique_name: str
) -> None:
    """A QoS 1 message's subscriber span is a child of the publisher's, with the journey."""
    require_broker("mqtt")
    topic = f"threadline/{unique_name}"
    received: queue.Queue[tuple[str | None, bytes]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        received.put((baggage.get_baggage("session.id"), message.payload))  # type: ignore[arg-type]

    subscriber, publisher = _client(), _client()
    try:
        subscriber.on_message = mqtt.traced_on_message(on_message)
        subscriber.on_subscribe = lambda *args: subscribed.put(True)
        subscriber.subscribe(topic, qos=1)
        assert subscribed.get(timeout=10)
        with threadline.journey(session_id="s-mqtt"):
            mqtt.publish(publisher, topic, b"temp=21", qos=1).wait_for_publish(10)
        assert received.get(timeout=10) == ("s-mqtt", b"temp=21")
    finally:
        for client in (subscriber, publisher):
            client.loop_stop()
            client.disconnect()

    assert_one_trace(
        threadline_spans.spans,
        journey={"session.id": "s-mqtt"},
        kinds={f"publish {topic}": SpanKind.PRODUCER, f"process {topic}": SpanKind.CONSUMER},
    )
    process = threadline_spans.named(f"process {topic}")[0]
    assert (process.attributes or {})["messaging.system"] == "mqtt"

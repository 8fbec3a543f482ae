"""MQTT v5 with paho-mqtt: context in the PUBLISH packet's user properties.

MQTT 3.1.1 has no per-message metadata, so the client must speak MQTT v5
(``paho.mqtt.client.Client(protocol=MQTTv5)``). Producer and consumer::

    mqtt.publish(client, "orders/new", b"...", qos=1)
    client.on_message = mqtt.traced_on_message(on_message)

A QoS 1/2 message the broker sends again (``dup`` set) is recorded as attempt 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from threadline.conventions import MESSAGING_MESSAGE_ID
from threadline.sdk.integrations.codec import as_pairs
from threadline.sdk.integrations.messaging import consumer_span, producer_span

if TYPE_CHECKING:
    import paho.mqtt.client
    import paho.mqtt.properties

SYSTEM: Final = "mqtt"

OnMessage = Callable[["paho.mqtt.client.Client", Any, "paho.mqtt.client.MQTTMessage"], None]


def publish(
    client: paho.mqtt.client.Client,
    topic: str,
    payload: bytes,
    qos: int = 0,
    retain: bool = False,
    properties: paho.mqtt.properties.Properties | None = None,
) -> paho.mqtt.client.MQTTMessageInfo:
    """Publish inside a PRODUCER span whose context rides in the user properties."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = properties or Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    with producer_span(SYSTEM, topic) as (span, headers):
        existing = list(getattr(properties, "UserProperty", []))
        properties.UserProperty = existing + as_pairs(headers)
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.mid:
            span.set_attribute(MESSAGING_MESSAGE_ID, str(info.mid))
    return info


def traced_on_message(handler: OnMessage) -> OnMessage:
    """Wrap an ``on_message`` callback so each message runs in a CONSUMER span of its trace."""

    def on_message(
        client: paho.mqtt.client.Client, userdata: Any, message: paho.mqtt.client.MQTTMessage
    ) -> None:
        properties = getattr(message, "properties", None)
        user_properties = getattr(properties, "UserProperty", None)
        with consumer_span(
            SYSTEM,
            message.topic,
            user_properties,
            message_id=str(message.mid) if message.mid else None,
            attempt=2 if message.dup else 1,
        ):
            handler(client, userdata, message)

    return on_message

"""Broker headers of every shape to and from the one carrier the propagator reads.

Brokers keep message metadata in different shapes: a mapping of strings (AMQP
headers, NATS headers, Redis stream fields, sometimes as bytes), or a list of
name/value pairs (Kafka record headers as bytes, MQTT v5 user properties as
strings). Producers inject into a plain ``dict[str, str]`` and convert it to the
broker's shape; consumers hand whatever arrived to :func:`context_from`, which
normalises it into a carrier of lower-cased names, each with its list of values
(repeated pairs stay separate field lines, as W3C asks for repeated headers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter

Carrier = dict[str, list[str]]


class _CarrierGetter(Getter[Carrier]):
    def get(self, carrier: Carrier, key: str) -> list[str] | None:
        return carrier.get(key.lower())

    def keys(self, carrier: Carrier) -> list[str]:
        return list(carrier)


_GETTER: Final = _CarrierGetter()


def context_headers(context: Context | None = None) -> dict[str, str]:
    """``traceparent``, ``tracestate`` and ``baggage`` for ``context`` (current if None)."""
    headers: dict[str, str] = {}
    propagate.inject(headers, context)
    return headers


def context_from(headers: object) -> Context:
    """The remote parent and baggage carried by ``headers`` of any broker shape.

    Accepts None, a mapping with ``str``/``bytes`` names and values, or an iterable
    of ``(name, value)`` pairs. Values that are not text are ignored.
    """
    return propagate.extract(to_carrier(headers), getter=_GETTER)


def to_carrier(headers: object) -> Carrier:
    """``headers`` as lower-cased names with their text values, in arrival order."""
    carrier: Carrier = {}
    if headers is None:
        return carrier
    pairs: Iterable[Any]
    if isinstance(headers, Mapping):
        pairs = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes):
        pairs = headers
    else:
        return carrier
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            continue
        name, value = _text(pair[0]), _text(pair[1])
        if name is not None and value is not None:
            carrier.setdefault(name.lower(), []).append(value)
    return carrier


def as_pairs(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Headers as ``(name, value)`` string pairs: MQTT v5 user properties."""
    return list(headers.items())


def as_byte_pairs(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """Headers as ``(name, bytes)`` pairs: Kafka record headers."""
    return [(name, value.encode("utf-8")) for name, value in headers.items()]


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None

"""Attribute values as the span keeps them: checked and cut like the SDK's, cheaply.

OpenTelemetry's ``BoundedAttributes`` validates every value through a chain of
``isinstance`` checks and takes a lock per set. Almost every value an instrumentation
sets is a plain ``str``, ``int``, ``float`` or ``bool`` under a non-empty ``str`` key:
those are taken as they are (a string cut to the length limit, when one is set).
Anything else (sequences, bytes, ``None``, bad keys) goes through ``BoundedAttributes``
itself, so the rules (and the warnings) are exactly the SDK's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes

PLAIN_TYPES: Final = frozenset({str, int, float, bool})

# Returned when a value is rejected (the SDK logs why and drops it): DROPPED when the
# installed SDK counts that as a dropped attribute (newer releases do), REJECTED if not.
REJECTED: Final = object()
DROPPED: Final = object()


def cleaned(key: object, value: object, max_length: int | None) -> Any:
    """``value`` as the SDK would store it under ``key``, else :data:`REJECTED` or
    :data:`DROPPED`."""
    value_type = type(value)
    if value_type in PLAIN_TYPES and type(key) is str and key:
        if max_length is not None and value_type is str and len(value) > max_length:  # type: ignore[arg-type]
            return value[:max_length]  # type: ignore[index]
        return value
    probe = BoundedAttributes(None, None, immutable=False, max_value_len=max_length)
    probe[key] = value  # type: ignore[index,assignment]
    if key not in probe:
        return DROPPED if probe.dropped else REJECTED
    return probe[key]  # type: ignore[index]


def bounded(
    attributes: Mapping[str, object] | None, max_count: int | None, max_length: int | None
) -> BoundedAttributes:
    """Immutable attributes of an event or a link, with the SDK's own container."""
    return BoundedAttributes(
        max_count,
        attributes,  # type: ignore[arg-type]
        immutable=True,
        max_value_len=max_length,
    )

"""The SDK's span limits, read once when the provider is built.

The values come from OpenTelemetry's own ``SpanLimits`` (so ``OTEL_SPAN_*_LIMIT`` and
``OTEL_ATTRIBUTE_*`` variables work as with the SDK); "no limit" becomes
``sys.maxsize`` so the per-span checks are one comparison.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from opentelemetry.sdk.trace import SpanLimits


@dataclass(frozen=True, slots=True)
class Limits:
    max_attributes: int
    max_events: int
    max_links: int
    max_event_attributes: int
    max_link_attributes: int
    max_length: int | None  # span attribute values (str) are cut to this length

    @classmethod
    def from_sdk(cls, limits: SpanLimits | None = None) -> Limits:
        sdk = limits or SpanLimits()

        def count(value: int | None) -> int:
            return sys.maxsize if value is None else value

        return cls(
            max_attributes=count(sdk.max_span_attributes),
            max_events=count(sdk.max_events),
            max_links=count(sdk.max_links),
            max_event_attributes=count(sdk.max_event_attributes),
            max_link_attributes=count(sdk.max_link_attributes),
            max_length=sdk.max_span_attribute_length,
        )

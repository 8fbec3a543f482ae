"""What one client may send: span, attribute and value-size limits, and a rate per token.

Request *size* is bounded in ``body`` (bytes as sent, bytes after decompression and
the decompression ratio); this module bounds what a request *holds*:

- more spans than ``max_spans_per_request`` is a 413: the sender should batch smaller;
- beyond ``max_attributes_per_span`` attributes (of a span, resource, event or link)
  or items (of an array or map value) the rest are dropped and counted in the
  attribute ``threadline.dropped_attributes``;
- beyond ``max_events_per_span`` events or links the rest are dropped;
- a string longer than ``max_attribute_value_length`` characters (an attribute value
  or key, a span, event or scope name, a status message) is cut to that length.

What was cut is marked, never silently lost: the span attribute
``threadline.truncated`` lists the keys whose values were cut (``name`` and
``status.message`` for those fields, ``events``/``links`` when any of theirs was),
and a resource carries its own list the same way. These are the same trade-offs the
OpenTelemetry SDK's span limits make; a span is kept, smaller, rather than refused.

The rate limit is a token bucket per access token, counted in spans: a request is
refused (429, ``Retry-After``) while its token's bucket is empty, and an accepted
request takes its spans out of the bucket, which may go below zero, so one large
request is followed by a proportionate wait instead of being split. The charge is
taken *before* the body is decoded, estimated from its size (``spans_for_bytes``),
in the same step as the check: concurrent requests cannot all pass an empty bucket
because none has paid yet, and a request refused later (400, 413) has still paid
for the work it caused. Once decoded, the charge is corrected to the real span
count. ``Retry-After`` is the time until the bucket is above zero again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from threadline.server.errors import PayloadTooLarge, TooManyRequests
from threadline.settings import ServerSettings

TRUNCATED_KEY: Final = "threadline.truncated"
DROPPED_ATTRIBUTES_KEY: Final = "threadline.dropped_attributes"
NAME_MARK: Final = "name"
STATUS_MESSAGE_MARK: Final = "status.message"
EVENTS_MARK: Final = "events"
LINKS_MARK: Final = "links"

# Distinct tokens (or clients) whose buckets are remembered; tokens are configured,
# so this only bounds memory if something unexpected keys the limiter.
MAX_BUCKETS: Final = 10_000
# A client is never asked to wait longer than this: past it, a retrying exporter
# would give up on spans it could have sent once the burst drained.
MAX_RETRY_AFTER_S: Final = 60
# The smallest spans an exporter sends take ~100 bytes of protobuf and ~300 of JSON;
# estimating by this many bytes charges a request no more spans than it can hold
# until its real count corrects the charge.
BYTES_PER_SPAN_ESTIMATE: Final = 100


def spans_for_bytes(size: int) -> int:
    """The spans charged for a request of ``size`` bytes before it is decoded (at least 1)."""
    return max(1, size // BYTES_PER_SPAN_ESTIMATE)


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """The limits of one server, from its settings; defaults equal the settings' defaults."""

    max_spans_per_request: int = 10_000
    max_attributes_per_span: int = 1000
    max_events_per_span: int = 1000
    max_attribute_value_length: int = 32_768
    max_decompression_ratio: int = 100

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def walk_threshold(self) -> int:
        """Attribute JSON at most this long cannot hold a value or array over the limits."""
        return min(self.max_attribute_value_length, 2 * self.max_attributes_per_span)

    @staticmethod
    def from_settings(settings: ServerSettings) -> IngestLimits:
        return IngestLimits(
            max_spans_per_request=settings.max_spans_per_request,
            max_attributes_per_span=settings.max_attributes_per_span,
            max_events_per_span=settings.max_events_per_span,
            max_attribute_value_length=settings.max_attribute_value_length,
            max_decompression_ratio=settings.max_decompression_ratio,
        )


DEFAULT_LIMITS: Final = IngestLimits()


def check_span_count(count: int, limits: IngestLimits) -> None:
    """413 when a request holds more spans than allowed."""
    if count > limits.max_spans_per_request:
        raise PayloadTooLarge(
            f"the request holds {count} spans; the limit is {limits.max_spans_per_request} "
            "(max_spans_per_request): send smaller batches"
        )


def cut_attributes(
    attributes: dict[str, object], limits: IngestLimits
) -> tuple[dict[str, object], list[str]]:
    """``attributes`` with over-long keys and values cut; and the keys that were."""
    cut: dict[str, object] = {}
    marks: list[str] = []
    max_chars = limits.max_attribute_value_length
    for key, value in attributes.items():
        new_value, changed = cut_value(value, limits)
        if len(key) > max_chars:
            key, changed = key[:max_chars], True
        cut[key] = new_value
        if changed:
            marks.append(key)
    return cut, marks


def cut_value(value: object, limits: IngestLimits) -> tuple[object, bool]:
    """A value within the limits, and whether anything had to be cut to get it."""
    max_chars = limits.max_attribute_value_length
    if isinstance(value, str):
        return (value[:max_chars], True) if len(value) > max_chars else (value, False)
    max_items = limits.max_attributes_per_span
    if isinstance(value, list):
        changed = len(value) > max_items
        items = []
        for item in value[:max_items]:
            new_item, item_changed = cut_value(item, limits)
            items.append(new_item)
            changed = changed or item_changed
        return items, changed
    if isinstance(value, dict):
        changed = len(value) > max_items
        entries: dict[str, object] = {}
        for n, (key, item) in enumerate(value.items()):
            if n >= max_items:
                break
            new_item, item_changed = cut_value(item, limits)
            if len(key) > max_chars:
                key, item_changed = key[:max_chars], True
            entries[key] = new_item
            changed = changed or item_changed
        return entries, changed
    return value, False


def cut_text(text: str, limits: IngestLimits) -> str:
    max_chars = limits.max_attribute_value_length
    return text[:max_chars] if len(text) > max_chars else text


class RateLimiter:
    """Token buckets of ``rate`` spans per second (one second of burst), one per key."""

    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate < 1:
            raise ValueError(f"rate must be at least 1 span per second, got {rate}")
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (spans available, when that was computed)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, spans: int) -> None:
        """Take ``spans`` out of ``key``'s bucket, or raise ``TooManyRequests`` while it is empty.

        Checking and taking are one step, so concurrent requests see each other's charges.
        """
        with self._lock:
            available = self._available(key)
            if available <= 0:
                wait_s = math.ceil(-available / self.rate) if available < 0 else 1
                retry_after = max(1, min(MAX_RETRY_AFTER_S, wait_s))
                raise TooManyRequests(
                    f"this token sent more than {self.rate} spans per second "
                    f"(ingest_rate_per_token); retry in {retry_after} s",
                    retry_after_s=retry_after,
                )
            self._set(key, available - spans)

    def charge(self, key: str, spans: int) -> None:
        """Take ``spans`` more out of ``key``'s bucket (give back, when negative)."""
        with self._lock:
            self._set(key, self._available(key) - spans)

    def _set(self, key: str, available: float) -> None:
        if key not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()
        # Never above the burst: a refund cannot bank more than a second of spans.
        self._buckets[key] = (min(float(self.rate), available), self._clock())

    def _available(self, key: str) -> float:
        now = self._clock()
        available, since = self._buckets.get(key, (float(self.rate), now))
        return min(float(self.rate), available + (now - since) * self.rate)

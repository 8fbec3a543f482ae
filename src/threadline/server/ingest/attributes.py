"""OTLP attributes as a span, event, link or resource stores them: JSON-able values,
within the ingest limits, redacted; and what a resource gives its spans.

Shared by the trace decoders (``decode``, ``span_decoder``) and the logs decoder
(``logs_decode``), so a value is stored alike whichever signal brought it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from threadline.conventions import JOURNEY_ID, SERVICE_NAME, SESSION_ID, USER_ID
from threadline.redaction.engine import EncodedBytes
from threadline.server.batch import dumps
from threadline.server.ingest.limits import (
    DROPPED_ATTRIBUTES_KEY,
    TRUNCATED_KEY,
    IngestLimits,
    cut_attributes,
)
from threadline.server.ingest.redact import IngestRedactor

# The service of a resource that names none (OpenTelemetry's default).
DEFAULT_SERVICE_NAME: Final = "unknown_service"


def journey_key(value: object) -> str | None:
    """A journey key as its column holds it; an absent or empty value is None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return dumps(value)


class Resource(NamedTuple):
    """What a resource gives each of its spans: the service, its attributes' JSON, and
    the (session, user, journey) keys a span without its own takes from it."""

    service: str
    json: str
    journey_keys: tuple[str | None, str | None, str | None]


def resource_of(entry: Any, limits: IngestLimits, redactor: IngestRedactor | None) -> Resource:
    """The resource of one ``ResourceSpans`` (the stock message, or ``wire``'s with span
    attributes left encoded: both parse the resource alike) or ``ResourceLogs``, within
    ``limits``, redacted."""
    values, text = bounded_attributes(
        entry.resource.attributes,
        limits,
        [],
        None if redactor is None else listed(redactor, []),
    )
    service = values.get(SERVICE_NAME)
    if not isinstance(service, str) or not service:
        service = DEFAULT_SERVICE_NAME
    keys = (
        journey_key(values.get(SESSION_ID)),
        journey_key(values.get(USER_ID)),
        journey_key(values.get(JOURNEY_ID)),
    )
    return Resource(service, text, keys)


Redact = Callable[[dict[str, object]], dict[str, object]]


def listed(redactor: IngestRedactor, found: list[str]) -> Redact:
    """Redaction of a span's or resource's attributes, listing ``found`` with its own."""

    def redact(values: dict[str, object]) -> dict[str, object]:
        return redactor.listed(values, found)

    return redact


def bounded_attributes(
    attributes: Sequence[KeyValue],
    limits: IngestLimits,
    marks: list[str],
    redact: Redact | None = None,
) -> tuple[dict[str, object], str]:
    """Attributes within ``limits`` and their JSON; what was cut is marked on them.

    ``marks`` names fields cut elsewhere (a span's name); they join the marks here.
    ``redact``, when given, runs on the decoded values before anything is cut.
    The JSON of all values together is never shorter than any one value, and an array
    of n items takes at least 2n characters, so when it is shorter than
    ``limits.walk_threshold`` nothing can be over a limit and nothing is walked: the
    usual span pays one ``len``.
    """
    max_attributes = limits.max_attributes_per_span
    dropped = len(attributes) - max_attributes
    values = attributes_to_dict(attributes[:max_attributes] if dropped > 0 else attributes)
    if redact is not None:
        values = redact(values)
    text = dumps(values)
    if len(text) > limits.walk_threshold:
        values, cut_keys = cut_attributes(values, limits)
        if cut_keys:
            marks.extend(cut_keys)
    if not marks and dropped <= 0:
        return values, text
    if marks:
        values[TRUNCATED_KEY] = marks
    if dropped > 0:
        values[DROPPED_ATTRIBUTES_KEY] = dropped
    return values, dumps(values)


def attributes_to_dict(attributes: Iterable[KeyValue]) -> dict[str, object]:
    """OTLP key/value list to a JSON-able dict; a repeated key keeps its last value."""
    return {kv.key: any_value(kv.value) for kv in attributes}


def any_value(value: AnyValue) -> object:
    """An OTLP ``AnyValue`` as a JSON-able Python value.

    bytes become base64 text (as in protobuf's JSON mapping) that keeps the bytes for
    redaction to scan (``EncodedBytes``); non-finite doubles
    become the strings "NaN", "Infinity", "-Infinity" (also as in that mapping)
    because JSON has no literal for them; an empty value is None.
    """
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else _non_finite(number)
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return EncodedBytes(value.bytes_value)
    # Unset, or a string-table index that only profiles use.
    return None


def _non_finite(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"

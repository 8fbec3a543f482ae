"""The compact record a finished span becomes while it waits for export.

OpenTelemetry's batch processor queues the whole ``ReadableSpan`` (~2.8 KB each here:
the span object, its locks, a copied event and link list, a context). We keep a plain
tuple of references to what the encoder needs, most of which the span already built
and which are immutable once it ended: the ``SpanContext``, the parent's, the name,
the attribute mapping, the status, the scope and the resource (shared by every span of
a tracer). The span object itself is then free to go. ``bench/export.py`` and
``tests/sdk/export/test_compact.py`` measure the memory of both with ``tracemalloc``.

A plain tuple rather than a NamedTuple or dataclass: it is the cheapest object Python
builds (this runs on the caller's thread for every span), so fields are read by the
index constants below, in ``encoder.py`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

from opentelemetry.sdk.trace import ReadableSpan

# Journey keys captured from baggage when the span started: ((key, value), ...).
Journey: TypeAlias = tuple[tuple[str, str], ...]

# (context, parent, name, kind, start_ns, end_ns, attributes, events, links, status,
#  scope, resource, dropped, journey); see the index constants.
CompactSpan: TypeAlias = tuple[Any, ...]

CONTEXT: Final = 0
PARENT: Final = 1
NAME: Final = 2
KIND: Final = 3
START: Final = 4
END: Final = 5
ATTRIBUTES: Final = 6
EVENTS: Final = 7
LINKS: Final = 8
STATUS: Final = 9
SCOPE: Final = 10
RESOURCE: Final = 11
DROPPED: Final = 12  # (attributes, events, links) dropped by the SDK's limits, or None
JOURNEY: Final = 13


def _capture_public(span: ReadableSpan, journey: Journey | None) -> CompactSpan:
    """The compact record of ``span`` through the public ``ReadableSpan`` API only."""
    events: Sequence[Any] = span.events
    links: Sequence[Any] = span.links
    dropped_attributes = span.dropped_attributes
    dropped_events = span.dropped_events
    dropped_links = span.dropped_links
    dropped = (
        (dropped_attributes, dropped_events, dropped_links)
        if dropped_attributes or dropped_events or dropped_links
        else None
    )
    attributes: Mapping[str, Any] | None = span.attributes
    return (
        span.context,
        span.parent,
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        attributes or None,
        events or None,
        links or None,
        span.status,
        span.instrumentation_scope,
        span.resource,
        dropped,
        journey,
    )


def _capture_fields(span: Any, journey: Journey | None) -> CompactSpan:
    """The same record from the span's own fields, without the copies the public
    properties make (``events``/``links`` build a tuple, ``attributes`` a proxy each call).

    Used only when :data:`FIELDS_READABLE` says this OpenTelemetry SDK has those fields;
    a test compares both functions' records on the same spans.
    """
    attributes = span._attributes
    events = span._events
    links = span._links
    dropped = None
    try:
        if attributes is not None and attributes.dropped:
            dropped = (attributes.dropped, span.dropped_events, span.dropped_links)
        elif events and events.dropped:
            dropped = (0, events.dropped, span.dropped_links)
        elif links and links.dropped:
            dropped = (0, 0, links.dropped)
    except AttributeError:
        # A ReadableSpan built directly (by a host's processor, a test, a copy) may hold
        # a plain dict or list, which counts no drops: the public API handles those.
        return _capture_public(span, journey)
    return (
        span._context,
        span._parent,
        span._name,
        span._kind,
        span._start_time,
        span._end_time,
        attributes or None,
        tuple(events) if events else None,
        tuple(links) if links else None,
        span._status,
        span._instrumentation_scope,
        span._resource,
        dropped,
        journey,
    )


def _fields_readable() -> bool:
    """Whether spans of the installed SDK carry the fields ``_capture_fields`` reads."""
    from opentelemetry.sdk.trace import TracerProvider

    probe: list[ReadableSpan] = []
    provider = TracerProvider()
    tracer = provider.get_tracer("threadline.probe")
    span = tracer.start_span("probe", attributes={"a": 1})
    span.end()
    probe.append(span)  # type: ignore[arg-type]
    try:
        return _capture_fields(probe[0], None)[:13] == _capture_public(probe[0], None)[:13]
    except Exception:
        return False
    finally:
        provider.shutdown()


# Decided once at import: ``capture(span, journey)`` runs for every span, so the choice
# is not made per span. Threadline accepts a range of OpenTelemetry releases
# (pyproject.toml); the fast path is tested on the oldest and newest of them, and any
# release whose spans fail the check (a newer one that moved a field) gets the public API.
FIELDS_READABLE: Final = _fields_readable()
capture: Final = _capture_fields if FIELDS_READABLE else _capture_public

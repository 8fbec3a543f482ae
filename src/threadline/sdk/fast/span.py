"""The span of the fast pipeline: an OpenTelemetry API ``Span`` that records into a tuple.

It implements the API interface (``opentelemetry.trace.Span``), not the SDK's span:
no lock per span, no ``BoundedAttributes`` container, no ``ReadableSpan`` copy at the
end. ``end()`` builds the compact export record (``sdk/export/compact.py``) from its
fields and hands it to the pipeline. What users and instrumentations see is the SDK's
behaviour, rule for rule (the SDK is the reference, ``tests/sdk/fast`` compares):

- attributes, events and links obey the SDK's span limits (``OTEL_SPAN_*_LIMIT``), the
  oldest attribute or event making room for a new one, drops counted and exported;
- ``set_status``: an ``OK`` status is final, ``UNSET`` is ignored;
- after ``end()`` the span is read-only: changes are ignored with the SDK's warning,
  a second ``end()`` too (so a span ended from two threads is exported once);
- used as a context manager (``with tracer.start_span(...) as span``), an escaping
  exception is recorded and sets an ``ERROR`` status, as the SDK span does.

The read-side properties (``name``, ``context``, ``attributes``, ...) mirror
``ReadableSpan``'s, for span processors that look at a span in ``on_start``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util import types

from threadline.sdk.export.compact import CompactSpan, Journey
from threadline.sdk.fast.attributes import DROPPED, PLAIN_TYPES, REJECTED, bounded, cleaned

if TYPE_CHECKING:
    from threadline.sdk.fast.tracer import FastTracer

logger = logging.getLogger("opentelemetry.sdk.trace")  # the SDK's logger: same warnings

_UNSET_STATUS: Final = Status(StatusCode.UNSET)
_OK: Final = StatusCode.OK
_UNSET: Final = StatusCode.UNSET
# Taken by end() only, for the instant of the ended-or-not check: a span ended on two
# threads at once is exported once. Uncontended, it costs less than a lock per span.
_end_lock: Final = threading.Lock()


class FastSpan(trace_api.Span):
    """A recording span; made by :class:`~threadline.sdk.fast.tracer.FastTracer` only."""

    __slots__ = (
        "_attributes",
        "_context",
        "_dropped_attributes",
        "_dropped_events",
        "_dropped_links",
        "_end_time",
        "_events",
        "_journey",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_record_exception",
        "_set_status_on_exception",
        "_start_time",
        "_status",
        "_tracer",
    )

    def __init__(
        self,
        tracer: FastTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        dropped_attributes: int,
        links: tuple[Link, ...] | None,
        dropped_links: int,
        start_time: int,
        journey: Journey | None,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._dropped_attributes = dropped_attributes
        self._links = links
        self._dropped_links = dropped_links
        self._events: list[Event] | None = None
        self._dropped_events = 0
        self._start_time = start_time
        self._end_time: int | None = None
        self._status = _UNSET_STATUS
        self._journey = journey
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    # --- the API ------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is not None:
            logger.warning("Setting attribute on ended span.")
            return
        limits = self._tracer.limits
        if type(value) in PLAIN_TYPES and type(key) is str and key:
            if limits.max_length is not None and type(value) is str:
                value = value[: limits.max_length]
        else:
            value = cleaned(key, value, limits.max_length)
            if value is REJECTED:
                return
            if value is DROPPED:
                self._dropped_attributes += 1
                return
        attributes = self._attributes
        if key not in attributes and len(attributes) >= limits.max_attributes:
            if not limits.max_attributes:
                self._dropped_attributes += 1
                return
            del attributes[next(iter(attributes))]  # the SDK drops the oldest
            self._dropped_attributes += 1
        attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            logger.warning("Setting attribute on ended span.")
            return
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            logger.warning("Tried calling %s on an ended span.", "_add_event")
            return
        limits = self._tracer.limits
        event = Event(
            name,
            bounded(attributes, limits.max_event_attributes, limits.max_length),
            timestamp,
        )
        events = self._events
        if events is None:
            events = self._events = []
        events.append(event)
        if len(events) > limits.max_events:
            del events[0]  # the SDK's bounded list drops the oldest, and counts it
            self._dropped_events += 1

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if not _is_valid_link(context, attributes):
            return
        if self._end_time is not None:
            logger.warning("Tried calling %s on an ended span.", "_add_link")
            return
        limits = self._tracer.limits
        link = Link(context, bounded(attributes, limits.max_link_attributes, limits.max_length))
        links = (*(self._links or ()), link)
        if len(links) > limits.max_links:
            self._dropped_links += len(links) - limits.max_links
            links = links[len(links) - limits.max_links :]
        self._links = links

    def update_name(self, name: str) -> None:
        if self._end_time is not None:
            logger.warning("Tried calling %s on an ended span.", "update_name")
            return
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None:
            logger.warning("Tried calling %s on an ended span.", "set_status")
            return
        if self._status.status_code is _OK:
            return
        if isinstance(status, Status):
            if status.status_code is _UNSET:
                return
            if description is not None:
                logger.warning(
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif isinstance(status, StatusCode):
            if status is _UNSET:
                return
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        # The SDK's own code: the event's attributes (type, message, stack trace) are
        # whatever the installed OpenTelemetry release writes.
        _sdk_record_exception(self, exception, attributes, timestamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        with _end_lock:
            if self._end_time is not None:
                ended_twice = True
            else:
                ended_twice = False
                self._end_time = end_time if end_time is not None else time_ns()
        if ended_twice:
            logger.warning("Calling end() on an ended span.")
            return
        self._tracer.finish(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self._end_time is None:
            if self._record_exception:
                self.record_exception(exception=exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def __repr__(self) -> str:
        return f'FastSpan(name="{self._name}", context={self._context})'

    # --- the export record --------------------------------------------------------

    def record(self) -> CompactSpan:
        """The compact export record of this (ended) span."""
        events = self._events
        links = self._links
        dropped_attributes = self._dropped_attributes
        dropped_events = self._dropped_events
        dropped_links = self._dropped_links
        tracer = self._tracer
        return (
            self._context,
            self._parent,
            self._name,
            self._kind,
            self._start_time,
            self._end_time,
            self._attributes or None,
            tuple(events) if events else None,
            links or None,
            self._status,
            tracer.scope,
            tracer.resource,
            (dropped_attributes, dropped_events, dropped_links)
            if dropped_attributes or dropped_events or dropped_links
            else None,
            self._journey,
        )

    # --- ReadableSpan's read side -------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def context(self) -> SpanContext:
        return self._context

    @property
    def parent(self) -> SpanContext | None:
        return self._parent

    @property
    def kind(self) -> SpanKind:
        return self._kind

    @property
    def start_time(self) -> int:
        return self._start_time

    @property
    def end_time(self) -> int | None:
        return self._end_time

    @property
    def attributes(self) -> Mapping[str, Any]:
        return MappingProxyType(self._attributes)

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events or ())

    @property
    def links(self) -> Sequence[Link]:
        return tuple(self._links or ())

    @property
    def status(self) -> Status:
        return self._status

    @property
    def resource(self) -> Resource:
        return self._tracer.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope:
        return self._tracer.scope

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    @property
    def dropped_links(self) -> int:
        return self._dropped_links


def _is_valid_link(context: SpanContext | None, attributes: types.Attributes) -> bool:
    # The SDK's rule: a link to an invalid context is kept only if it says something.
    return bool(context and (context.is_valid or (attributes or context.trace_state)))


def _sdk_record_exception(
    span: FastSpan,
    exception: BaseException,
    attributes: types.Attributes,
    timestamp: int | None,
    escaped: bool,
) -> None:
    from opentelemetry.sdk.trace import Span as SdkSpan

    # SdkSpan.record_exception builds the attributes and calls span.add_event (ours).
    SdkSpan.record_exception(span, exception, attributes, timestamp, escaped)  # type: ignore[arg-type]

"""Redaction in the SDK: finished spans are redacted before any exporter sees them.

A span is mutable only until it ends, and a processor's ``on_end`` receives an
immutable ``ReadableSpan``; overriding the SDK's private setters to redact earlier
would tie us to one OpenTelemetry version. So redaction works on finished spans,
through public constructors only, in one of three places:

- :class:`RedactingSpanExporter` wraps a ``SpanExporter``: runs on the export thread;
- :func:`redact_compact` maps the export pipeline's compact records (``sdk/export``);
  ``configure()`` uses it: the export worker applies it to each batch before encoding,
  so the thread that ends a span pays nothing for redaction;
- :class:`RedactingSpanProcessor` wraps a span processor and hands it redacted copies
  in ``on_end``: it works with any processor, at the price of running on the thread
  that ends the span, so ``configure()`` does not use it.

When Threadline joins a TracerProvider the host built, only what Threadline exports is
redacted; the host's own exporters are not wrapped (hosts can wrap them in
:class:`RedactingSpanExporter`).

All three share one per-span step (``_changes``; :func:`redact_span` for a
``ReadableSpan``, :func:`redact_compact` for a compact record), and a clean span is
handed on as it is: only a span in which a rule matched is copied. The
copy lists what was redacted in ``threadline.redacted``. If redacting a span fails,
the span is dropped and the failure reported: a span that may hold a secret is never
exported unredacted.

Every part of a span that can carry text is covered: its name, attribute keys and
values, status message, event names and attributes, link attributes, and the
resource and instrumentation scope it was made under. A resource or scope is shared
by every span of its tracer, so each is redacted once (``Redactor.memoized``); a
redacted resource carries its own ``threadline.redacted`` list, and a span whose
scope name was redacted lists ``scope.name``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, cast

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Status

from threadline.redaction import REDACTED_FIELDS, Redactor, merge_redacted
from threadline.sdk.export import compact
from threadline.sdk.export.compact import CompactSpan
from threadline.sdk.guard import report_internal_error

_T = TypeVar("_T")


def redact_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """``span`` with the rules applied: the same object when nothing matched, else a copy.

    The copy lists the redacted fields in the ``threadline.redacted`` attribute: attribute
    keys, ``events.<event name>.<key>``, ``events.name``, ``links.<key>``, ``name``,
    ``status.message`` and ``scope.name``; always as redacted, never a value.
    """
    found: list[str] = []
    resource = _redacted_resource(span.resource, redactor)
    scope = _redacted_scope(span.instrumentation_scope, redactor, found)
    changes = _changes(
        span.attributes or {}, span.name, span.status, span.events, span.links, redactor, found
    )
    if changes is None:
        if resource is span.resource:
            return span
        changes = _Changes(dict(span.attributes or {}), None, None, None, None)
    return ReadableSpan(
        name=span.name if changes.name is None else changes.name,
        context=span.context,
        parent=span.parent,
        resource=resource,
        attributes=_otel(changes.attributes),
        events=span.events if changes.events is None else _bounded(changes.events),
        links=span.links if changes.links is None else _bounded(changes.links),
        kind=span.kind,
        status=span.status if changes.status is None else changes.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=scope,
    )


def redact_compact(record: CompactSpan, redactor: Redactor) -> CompactSpan:
    """A compact export record (``sdk/export/compact.py``) with the rules applied.

    The same tuple when nothing matched. For the export worker, so redaction runs off
    the host's threads: ``batch = [redact_compact(r, redactor) for r in batch]``.
    """
    found: list[str] = []
    resource = record[compact.RESOURCE]
    new_resource = _redacted_resource(resource, redactor)
    scope = record[compact.SCOPE]
    new_scope = _redacted_scope(scope, redactor, found)
    journey = record[compact.JOURNEY]
    new_journey = redactor.attributes(dict(journey), found) if journey else None
    changes = _changes(
        record[compact.ATTRIBUTES] or {},
        record[compact.NAME],
        record[compact.STATUS],
        record[compact.EVENTS] or (),
        record[compact.LINKS] or (),
        redactor,
        found,
    )
    if changes is None and new_resource is resource:
        return record
    fields = list(record)
    fields[compact.RESOURCE] = new_resource
    fields[compact.SCOPE] = new_scope
    if changes is None:
        return tuple(fields)
    fields[compact.ATTRIBUTES] = changes.attributes
    if changes.name is not None:
        fields[compact.NAME] = changes.name
    if changes.status is not None:
        fields[compact.STATUS] = changes.status
    if changes.events is not None:
        fields[compact.EVENTS] = changes.events
    if changes.links is not None:
        fields[compact.LINKS] = changes.links
    if new_journey is not None:
        fields[compact.JOURNEY] = tuple((k, str(v)) for k, v in new_journey.items())
    return tuple(fields)


class _Changes(NamedTuple):
    """What the rules changed in one span; None for a part left as it was."""

    attributes: dict[str, object]  # always new: it lists the redacted fields
    name: str | None
    status: Status | None
    events: list[Event] | None
    links: list[Link] | None


def _changes(
    attributes: Mapping[str, object],
    name: str,
    status: Status,
    events: Sequence[Event],
    links: Sequence[Link],
    redactor: Redactor,
    found: list[str],
) -> _Changes | None:
    """The redacted parts of one span (the step both record kinds share), or None when
    nothing matched and ``found`` (fields already redacted by the caller) is empty."""
    new_attributes = redactor.attributes(attributes, found)
    new_name = redactor.text(name)
    if new_name is not None:
        found.append("name")
    description = redactor.text(status.description) if status.description else None
    if description is not None:
        found.append("status.message")
    new_events = _redacted_events(events, redactor, found)
    new_links = _redacted_links(links, redactor, found)
    if not found:
        return None
    merged = dict(new_attributes if new_attributes is not None else attributes)
    # What arrived under threadline.redacted was scanned like any value: merge that.
    merged[REDACTED_FIELDS] = merge_redacted(merged.get(REDACTED_FIELDS), found)
    return _Changes(
        merged,
        new_name,
        None if description is None else Status(status.status_code, description),
        new_events,
        new_links,
    )


def _redacted_events(
    events: Sequence[Event], redactor: Redactor, found: list[str]
) -> list[Event] | None:
    copy: list[Event] | None = None
    for index, event in enumerate(events):
        name = redactor.text(event.name)
        if name is not None:
            found.append("events.name")
        else:
            name = event.name
        attributes = redactor.attributes(event.attributes or {}, found, f"events.{name}.")
        if attributes is None and name is event.name:
            continue
        if copy is None:
            copy = list(events)
        copy[index] = Event(
            name, event.attributes if attributes is None else _otel(attributes), event.timestamp
        )
    return copy


def _redacted_resource(resource: Resource, redactor: Redactor) -> Resource:
    """``resource`` redacted (the same object when clean), once per resource."""
    return redactor.memoized(resource, _resource)


def _resource(resource: Resource, redactor: Redactor) -> Resource:
    found: list[str] = []
    attributes = redactor.attributes(resource.attributes, found)
    if attributes is None:
        return resource
    attributes[REDACTED_FIELDS] = merge_redacted(attributes.get(REDACTED_FIELDS), found)
    return Resource(cast(Mapping[str, Any], attributes), resource.schema_url)


def _redacted_scope(
    scope: InstrumentationScope | None, redactor: Redactor, found: list[str]
) -> InstrumentationScope | None:
    """``scope`` with its name redacted, once per scope; ``scope.name`` added to ``found``."""
    if scope is None:
        return None
    redacted = redactor.memoized(scope, _scope)
    if redacted is not scope:
        found.append("scope.name")
    return redacted


def _scope(scope: InstrumentationScope, redactor: Redactor) -> InstrumentationScope:
    name = redactor.text(scope.name)
    if name is None:
        return scope
    return InstrumentationScope(name, scope.version, scope.schema_url, scope.attributes)


def _redacted_links(
    links: Sequence[Link], redactor: Redactor, found: list[str]
) -> list[Link] | None:
    copy: list[Link] | None = None
    for index, link in enumerate(links):
        attributes = redactor.attributes(link.attributes or {}, found, "links.")
        if attributes is None:
            continue
        if copy is None:
            copy = list(links)
        copy[index] = Link(link.context, _otel(attributes))
    return copy


def _otel(attributes: dict[str, object]) -> BoundedAttributes:
    # The containers the SDK itself builds spans with, so that code reading a span's
    # fields (dropped counts) finds what it would find on any other span. Values are
    # only ever replaced by strings or sequences of them: still valid attributes.
    return BoundedAttributes(attributes=cast(Mapping[str, Any], attributes), immutable=True)


def _bounded(items: Sequence[_T]) -> BoundedList[_T]:
    return BoundedList.from_seq(None, items)


class RedactingSpanExporter(SpanExporter):
    """Hands ``exporter`` redacted copies of the spans it is given."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor) -> None:
        self._exporter = exporter
        self._redactor = redactor

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redacted = []
        for span in spans:
            try:
                redacted.append(redact_span(span, self._redactor))
            except Exception:
                report_internal_error("redaction")  # the span is dropped, not sent in clear
        return self._exporter.export(redacted)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class RedactingSpanProcessor(SpanProcessor):
    """Hands ``processor`` redacted copies of ended spans; ``on_start`` is passed through.

    For export processors that do not take a ``SpanExporter``: it redacts on the thread
    that ends the span, so a pipeline that can redact on its export thread (through
    :class:`RedactingSpanExporter` or :func:`redact_span`) should do that instead.
    """

    def __init__(self, processor: SpanProcessor, redactor: Redactor) -> None:
        self._processor = processor
        self._redactor = redactor

    @property
    def processor(self) -> SpanProcessor:
        return self._processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            redacted = redact_span(span, self._redactor)
        except Exception:
            report_internal_error("redaction")  # the span is dropped, not sent in clear
            return
        self._processor.on_end(redacted)

    def shutdown(self) -> None:
        self._processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._processor.force_flush(timeout_millis)

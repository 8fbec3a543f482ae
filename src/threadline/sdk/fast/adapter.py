"""SDK ``SpanProcessor``s on the fast pipeline: a ``ReadableSpan`` only when one is there.

A host (or Threadline's pytest plugin) may add OpenTelemetry SDK span processors to
the provider ``configure()`` installed, as it would to the SDK's ``TracerProvider``.
They get ``on_start(span, parent_context)`` with the live span (it has the SDK span's
read-side properties and ``set_attribute``), and ``on_end`` with an SDK
``ReadableSpan`` built from the span's export record, with its drop counts: built
once per span however many processors there are, and not at all when there are none
(the provider calls this adapter only then).

A processor that raises is reported through the guard (rate-limited log, re-raised
under tests), never into the code that ended the span.
"""

from __future__ import annotations

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util import BoundedList

from threadline.sdk.export import compact
from threadline.sdk.export.compact import CompactSpan
from threadline.sdk.fast.span import FastSpan
from threadline.sdk.guard import report_internal_error


def readable_span(record: CompactSpan) -> ReadableSpan:
    """The SDK's ``ReadableSpan`` of a compact record (journey keys are not attributes
    of the span in the record: they are added as the exporter encodes it)."""
    dropped = record[compact.DROPPED] or (0, 0, 0)
    attributes = BoundedAttributes(None, record[compact.ATTRIBUTES], immutable=True)
    attributes.dropped = dropped[0]
    events: BoundedList[object] = BoundedList.from_seq(None, record[compact.EVENTS] or ())
    events.dropped = dropped[1]
    links: BoundedList[object] = BoundedList.from_seq(None, record[compact.LINKS] or ())
    links.dropped = dropped[2]
    return ReadableSpan(
        name=record[compact.NAME],
        context=record[compact.CONTEXT],
        parent=record[compact.PARENT],
        resource=record[compact.RESOURCE],
        attributes=attributes,
        events=events,  # type: ignore[arg-type]
        links=links,  # type: ignore[arg-type]
        kind=record[compact.KIND],
        status=record[compact.STATUS],
        start_time=record[compact.START],
        end_time=record[compact.END],
        instrumentation_scope=record[compact.SCOPE],
    )


class SdkProcessors:
    """The SDK span processors added to a fast provider, called in the order added."""

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()

    @property
    def processors(self) -> tuple[SpanProcessor, ...]:
        return self._processors

    def __bool__(self) -> bool:
        return bool(self._processors)

    def add(self, processor: SpanProcessor) -> None:
        # A new tuple, swapped in whole: spans ending meanwhile see the old or the new one.
        self._processors = (*self._processors, processor)

    def on_start(self, span: FastSpan, parent_context: Context | None) -> None:
        for processor in self._processors:
            try:
                processor.on_start(span, parent_context=parent_context)  # type: ignore[arg-type]
            except Exception:
                report_internal_error("span processor on_start")

    def on_end(self, record: CompactSpan) -> None:
        try:
            span = readable_span(record)
        except Exception:
            report_internal_error("building a ReadableSpan for span processors")
            return
        for processor in self._processors:
            try:
                processor.on_end(span)
            except Exception:
                report_internal_error("span processor on_end")

    def force_flush(self, timeout_millis: int) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._processors)

    def shutdown(self) -> None:
        for processor in self._processors:
            try:
                processor.shutdown()
            except Exception:
                report_internal_error("span processor shutdown")

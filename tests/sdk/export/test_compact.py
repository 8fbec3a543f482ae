"""A queued span costs at most half the memory OpenTelemetry's batch processor keeps for it."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from threadline.sdk.export.compact import ATTRIBUTES, JOURNEY, NAME, capture

SPANS: Final = 2000
ATTRIBUTES_OF_SPAN: Final = {"order.id": 1234, "order.items": 3, "shop.region": "eu-west"}


class _Hold(SpanProcessor):
    """Keeps what ``convert`` makes of each finished span, as a queue would."""

    def __init__(self, convert: Callable[[ReadableSpan], Any]) -> None:
        self.convert = convert
        self.held: list[Any] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.held.append(self.convert(span))


def _bytes_per_queued_span(convert: Callable[[ReadableSpan], Any]) -> float:
    hold = _Hold(convert)
    provider = TracerProvider()
    provider.add_span_processor(hold)
    tracer = provider.get_tracer("memory")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(SPANS):
            with tracer.start_as_current_span("work", attributes=ATTRIBUTES_OF_SPAN) as span:
                span.set_attribute("index", index)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(hold.held) == SPANS
    return (after - before) / SPANS


def test_compact_record_uses_less_than_half_the_memory_of_a_queued_span() -> None:
    """Holding compact records retains < 0.5x the memory of holding the spans themselves."""
    stock = _bytes_per_queued_span(lambda span: span)
    compact = _bytes_per_queued_span(lambda span: capture(span, None))
    assert compact < 0.5 * stock, (compact, stock)


def test_compact_record_keeps_what_export_needs() -> None:
    """The record holds the name, the attributes and the captured journey."""
    hold = _Hold(lambda span: capture(span, (("session.id", "s-1"),)))
    provider = TracerProvider()
    provider.add_span_processor(hold)
    with provider.get_tracer("t").start_as_current_span("op", attributes={"a": 1}):
        pass
    record = hold.held[0]
    assert record[NAME] == "op"
    assert dict(record[ATTRIBUTES]) == {"a": 1}
    assert record[JOURNEY] == (("session.id", "s-1"),)


def test_fast_capture_matches_the_public_api_capture() -> None:
    """Reading the span's fields gives the same encoded span as the public properties."""
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.trace import Link

    from threadline.sdk.export.compact import FIELDS_READABLE, _capture_fields, _capture_public
    from threadline.sdk.export.encoder import SpanEncoder

    assert FIELDS_READABLE  # the installed (pinned) SDK has the fields the fast path reads
    hold = _Hold(lambda span: span)
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=2, max_events=1))
    provider.add_span_processor(hold)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        root.set_attributes({"a": 1, "b": 2, "c": 3})  # one dropped
        root.add_event("e1")
        root.add_event("e2")  # dropped
    with tracer.start_as_current_span("linked", links=[Link(root.get_span_context())]):
        pass
    encoder = SpanEncoder()
    for span in hold.held:
        fast = encoder.encode_span(_capture_fields(span, None))
        public = encoder.encode_span(_capture_public(span, None))
        assert fast == public


def test_capture_accepts_a_span_built_with_plain_dicts_and_lists() -> None:
    """A ReadableSpan built directly, with dict attributes and list events/links, is queued."""
    from opentelemetry.sdk.trace import Event
    from opentelemetry.trace import Link, SpanContext

    from threadline.sdk.export.compact import EVENTS, LINKS, _capture_public
    from threadline.sdk.export.encoder import SpanEncoder

    context = SpanContext(0x1F, 0x2F, is_remote=False)
    span = ReadableSpan(
        name="built",
        context=context,
        attributes={"a": 1},
        events=[Event("e", {"k": "v"}, timestamp=5)],
        links=[Link(context, {"l": 2})],
        start_time=1,
        end_time=9,
    )
    journey = (("session.id", "s-1"),)
    record = capture(span, journey)
    assert record[NAME] == "built"
    assert dict(record[ATTRIBUTES]) == {"a": 1}
    assert [event.name for event in record[EVENTS]] == ["e"]
    assert len(record[LINKS]) == 1
    assert record[JOURNEY] == journey
    encoder = SpanEncoder()
    assert encoder.encode_span(record) == encoder.encode_span(_capture_public(span, journey))


def test_an_sdk_whose_fields_say_something_else_gets_the_public_capture() -> None:
    """On an OpenTelemetry release whose span fields no longer match its public properties,
    the import-time check picks the public-API capture, and spans keep their true values."""
    import json
    import subprocess
    import sys

    script = """
import json
from opentelemetry.sdk import trace as sdk_trace

# A release that no longer keeps the span's name in ``_name`` as the property reports it.
sdk_trace.ReadableSpan.name = property(lambda self: "public:" + self._name)

from threadline.sdk.export import compact

provider = sdk_trace.TracerProvider()
span = provider.get_tracer("t").start_span("op")
span.end()
print(json.dumps({
    "fields_readable": compact.FIELDS_READABLE,
    "public_capture": compact.capture is compact._capture_public,
    "name": compact.capture(span, None)[compact.NAME],
}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "fields_readable": False,
        "public_capture": True,
        "name": "public:op",
    }

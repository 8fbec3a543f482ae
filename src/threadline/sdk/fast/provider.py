"""The fast pipeline's ``TracerProvider``, and the per-provider state its spans share.

    FastTracerProvider ── get_tracer() ──> FastTracer ── start_span() ──> FastSpan
          │                                                                 │ end()
          └── Pipeline: resource, limits, sampler, journey keys ◄───────────┘
                 ├── export: ExportProcessor.offer(record)   (sdk/export, compact queue)
                 └── sdk_processors: SDK SpanProcessors, only when added (adapter.py)

What the pipeline does per span is decided when it is built or changed (a processor
added), not per span. Spans that were started and never ended hold no reference in the
pipeline (nothing grows when a host forgets ``end()``): the pipeline counts starts and
ends, and ``shutdown()`` reports the difference as dropped (``never_ended`` in
``threadline.stats()``). After ``shutdown()`` new spans do not record.
"""

from __future__ import annotations

import atexit
import itertools
import os
import weakref
from collections.abc import Callable, Sequence
from time import time_ns
from typing import Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util import types

from threadline.sdk.export.compact import CompactSpan
from threadline.sdk.export.processor import ExportProcessor
from threadline.sdk.export.stats import DropReason
from threadline.sdk.fast.adapter import SdkProcessors
from threadline.sdk.fast.journeys import JourneyKeys
from threadline.sdk.fast.limits import Limits
from threadline.sdk.fast.span import FastSpan
from threadline.sdk.fast.tracer import FastTracer
from threadline.sdk.guard import logger, report_internal_error
from threadline.sdk.sampling.rule_sampler import RuleSampler

# Tracers are kept per (name, version, schema_url): instrumentations ask once, but code
# that calls trace.get_tracer() per request must not grow this without bound.
MAX_TRACERS: Final = 1024


class Pipeline:
    """What every span of one provider shares (see the module docstring)."""

    def __init__(
        self,
        resource: Resource,
        sampler: Sampler,
        rule_sampler: RuleSampler | None,
        limits: Limits,
        journeys: JourneyKeys,
        stamp: bool,
    ) -> None:
        self.resource = resource
        self.sampler = sampler
        # The sampler is ParentBased(rule_sampler): a child follows its parent's flag.
        self.follows_parent = rule_sampler is not None
        self._rule_sampler = rule_sampler
        self.limits = limits
        self.journeys = journeys
        self.stamp = stamp
        self.clock: Callable[[], int] = time_ns
        self.started = itertools.count()
        self.ended = itertools.count()
        self.stopped = False
        self.export: ExportProcessor | None = None
        self._offer: Callable[[CompactSpan], None] | None = None
        self.sdk_processors = SdkProcessors()
        self.on_start: Callable[[FastSpan, Context | None], None] | None = None

    def roots_all_sampled(self) -> bool:
        rule_sampler = self._rule_sampler
        return rule_sampler is not None and rule_sampler.samples_all

    def sample(
        self,
        context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind,
        attributes: types.Attributes,
        links: Sequence[Link] | None,
    ) -> tuple[int, bool, types.Attributes, Any]:
        """(sampled, recording, attributes, trace state) from the sampler, as the SDK asks."""
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        decision = result.decision
        return (
            1 if decision.is_sampled() else 0,  # type: ignore[no-untyped-call]
            decision.is_recording(),  # type: ignore[no-untyped-call]
            result.attributes,
            result.trace_state,
        )

    def set_export(self, processor: ExportProcessor) -> None:
        self.export = processor
        self._offer = processor.offer

    def add_sdk_processor(self, processor: SpanProcessor) -> None:
        self.sdk_processors.add(processor)
        self.on_start = self.sdk_processors.on_start

    def finish(self, span: FastSpan) -> None:
        next(self.ended)
        if self.stopped:
            return  # counted as never ended by shutdown()
        try:
            record = span.record()
            offer = self._offer
            if offer is not None and span._context.trace_flags & 1:
                offer(record)
            if self.on_start is not None:
                self.sdk_processors.on_end(record)
        except Exception:
            report_internal_error("ending a span")

    def open_spans(self) -> int:
        """Spans started and not ended (yet)."""
        return next(self.started) - next(self.ended)

    def reset_after_fork(self) -> None:
        # A child has none of its parent's open spans to end.
        self.started = itertools.count()
        self.ended = itertools.count()


class FastTracerProvider(trace_api.TracerProvider):
    """Threadline's ``TracerProvider`` on the OpenTelemetry API (``configure()``'s default)."""

    def __init__(
        self,
        resource: Resource,
        sampler: Sampler,
        rule_sampler: RuleSampler | None = None,
        pseudonymize_user_id: Callable[[str], str] = str,
        stamp: bool = False,
        span_limits: SpanLimits | None = None,
        shutdown_on_exit: bool = True,
    ) -> None:
        self._pipeline = Pipeline(
            resource,
            sampler,
            rule_sampler,
            Limits.from_sdk(span_limits),
            JourneyKeys(pseudonymize_user_id),
            stamp,
        )
        self._tracers: dict[tuple[str, str | None, str | None], FastTracer] = {}
        if shutdown_on_exit:
            # As the SDK's provider: what is queued is exported when the interpreter exits.
            atexit.register(self.shutdown)
        if hasattr(os, "register_at_fork"):
            pipeline = weakref.ref(self._pipeline)

            def _in_child() -> None:
                alive = pipeline()
                if alive is not None:
                    alive.reset_after_fork()

            os.register_at_fork(after_in_child=_in_child)

    @property
    def resource(self) -> Resource:
        return self._pipeline.resource

    @property
    def sampler(self) -> Sampler:
        return self._pipeline.sampler

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes | None = None,
    ) -> trace_api.Tracer:
        if not instrumenting_module_name:
            logger.warning("get_tracer called with missing module name.")
            instrumenting_module_name = ""
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        if attributes is None:
            tracer = self._tracers.get(key)
            if tracer is not None:
                return tracer
        scope = InstrumentationScope(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        tracer = FastTracer(self._pipeline, scope)
        if attributes is None:
            if len(self._tracers) >= MAX_TRACERS:
                self._tracers.clear()
            self._tracers[key] = tracer
        return tracer

    @property
    def span_processors(self) -> tuple[object, ...]:
        """What runs when a span ends, in order: the export processor (it is handed the
        span's compact record), then the SDK span processors added."""
        pipeline = self._pipeline
        export = (pipeline.export,) if pipeline.export is not None else ()
        return (*export, *pipeline.sdk_processors.processors)

    def set_export(self, processor: ExportProcessor) -> None:
        """Send every sampled span's record to ``processor`` (``configure()`` does this)."""
        self._pipeline.set_export(processor)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        """Add an OpenTelemetry SDK span processor, as on the SDK's ``TracerProvider``."""
        self._pipeline.add_sdk_processor(span_processor)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        pipeline = self._pipeline
        flushed = pipeline.export.force_flush(timeout_millis) if pipeline.export else True
        return pipeline.sdk_processors.force_flush(timeout_millis) and flushed

    def shutdown(self) -> None:
        """Count spans never ended as dropped, flush and stop; spans record no more after."""
        pipeline = self._pipeline
        if pipeline.stopped:
            return
        pipeline.stopped = True
        never_ended = pipeline.open_spans()
        if never_ended > 0:
            logger.warning(
                "Threadline: %d span(s) were started and never ended; they are dropped",
                never_ended,
            )
            if pipeline.export is not None:
                pipeline.export.counters.add_dropped(DropReason.NEVER_ENDED, never_ended)
        if pipeline.export is not None:
            pipeline.export.shutdown()
        pipeline.sdk_processors.shutdown()

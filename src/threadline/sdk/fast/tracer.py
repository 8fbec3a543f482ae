"""The fast pipeline's ``Tracer``: sampling, ids and the current-span context manager.

``start_span`` does what the SDK's does, in one function and without the objects the
SDK builds on the way (a ``SamplingResult`` per span, a ``BoundedAttributes`` with its
lock, a span lock, a ``ReadableSpan`` at the end):

- the parent comes from ``context`` (else the current context), as ``get_current_span``;
- with the sampler ``configure()`` installs (``ParentBased(RuleSampler)``), a span with
  a valid parent takes the parent's ``sampled`` flag, and a root span whose rules keep
  everything is sampled without a call; anything else asks the sampler, as the SDK does;
- an unsampled span is the API's ``NonRecordingSpan`` (it still gets its own span id);
- the journey keys come from the parent context's baggage (``journeys.py``).

``start_as_current_span`` returns a small class-based context manager instead of the
API's two nested generator-based ones (``start_as_current_span`` over ``use_span``); it
attaches and detaches the context through the public ``opentelemetry.context`` calls
and handles an escaping exception exactly as ``use_span`` does. Like the API's, it also
decorates functions and coroutine functions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util import types

from threadline.sdk.context_keys import span_and_baggage
from threadline.sdk.fast.attributes import DROPPED, PLAIN_TYPES, REJECTED, bounded, cleaned
from threadline.sdk.fast.ids import new_span_id, new_trace_id
from threadline.sdk.fast.span import FastSpan, _is_valid_link

if TYPE_CHECKING:
    from threadline.sdk.fast.provider import Pipeline

_F = TypeVar("_F", bound=Callable[..., Any])

_get_current: Final = context_api.get_current
_set_span_in_context: Final = trace_api.set_span_in_context
_attach: Final = context_api.attach
_detach: Final = context_api.detach
_INTERNAL: Final = SpanKind.INTERNAL

# W3C Trace Context Level 2 "random" flag: set by OpenTelemetry releases that know it
# (its own random ids qualify); older releases neither set nor keep it.
RANDOM_FLAG: Final = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
_FLAGS: Final = tuple(TraceFlags(bits & (1 | RANDOM_FLAG)) for bits in range(4))


def _probe_context_layout() -> bool:
    """Whether ``SpanContext`` is the tuple ``tuple.__new__`` below builds (it has been
    since 1.0); checked once, else every span goes through the validating constructor."""
    made = SpanContext(1, 2, False, _FLAGS[1], DEFAULT_TRACE_STATE)
    try:
        direct = tuple.__new__(SpanContext, (1, 2, False, _FLAGS[1], DEFAULT_TRACE_STATE, True))
        return bool(
            direct == made
            and direct.trace_id == 1
            and direct.span_id == 2
            and direct.is_valid
            and direct.trace_flags is made.trace_flags
        )
    except Exception:
        return False


_DIRECT: Final = _probe_context_layout()
_STR_ONLY: Final = {str}


_tuple_new: Final = tuple.__new__


def _span_context(trace_id: int, span_id: int, flags: TraceFlags, state: Any) -> SpanContext:
    # Both ids are valid by construction (ids.py), so the validation is skipped.
    if _DIRECT:
        return _tuple_new(SpanContext, (trace_id, span_id, False, flags, state, True))
    return SpanContext(trace_id, span_id, False, flags, state)


class FastTracer(trace_api.Tracer):
    """A tracer of :class:`~threadline.sdk.fast.provider.FastTracerProvider`."""

    def __init__(self, pipeline: Pipeline, scope: InstrumentationScope) -> None:
        self._pipeline = pipeline
        self.scope = scope
        self.resource = pipeline.resource
        self.limits = pipeline.limits

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = _INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        pipeline = self._pipeline
        ctx = context if context is not None else _get_current()
        parent_span, entries = span_and_baggage(ctx)
        parent: SpanContext | None = (
            parent_span._context
            if type(parent_span) is FastSpan
            else parent_span.get_span_context()
        )
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            random_bit = parent.trace_flags & RANDOM_FLAG
            if pipeline.follows_parent:
                sampled = parent.trace_flags & 1
                recording = bool(sampled)
                trace_state = parent.trace_state
            else:
                sampled, recording, attributes, trace_state = pipeline.sample(
                    context, trace_id, name, kind, attributes, links
                )
        else:
            parent = None
            trace_id = new_trace_id()
            random_bit = RANDOM_FLAG
            if pipeline.roots_all_sampled():
                sampled, recording, trace_state = 1, True, DEFAULT_TRACE_STATE
            else:
                sampled, recording, attributes, trace_state = pipeline.sample(
                    context, trace_id, name, kind, attributes, links
                )
        span_context = _span_context(
            trace_id, new_span_id(), _FLAGS[(1 if sampled else 0) | random_bit], trace_state
        )
        if not recording or pipeline.stopped:
            return NonRecordingSpan(span_context)
        limits = self.limits
        values: dict[str, Any] = {}
        dropped = 0
        if not attributes:
            pass
        elif (
            limits.max_length is None
            and len(attributes) <= limits.max_attributes
            and set(map(type, attributes.values())) <= PLAIN_TYPES
            and set(map(type, attributes)) == _STR_ONLY
            and "" not in attributes
        ):
            # The usual case, checked in C: plain values under non-empty str keys.
            values = dict(attributes)
        else:
            max_length = limits.max_length
            for key, value in attributes.items():
                if type(value) in PLAIN_TYPES and type(key) is str and key:
                    if max_length is not None and type(value) is str:
                        value = value[:max_length]
                    values[key] = value
                else:
                    value = cleaned(key, value, max_length)
                    if value is DROPPED:
                        dropped += 1
                    elif value is not REJECTED:
                        values[key] = value
            if len(values) > limits.max_attributes:
                over = len(values) - limits.max_attributes
                values = dict(list(values.items())[over:])
                dropped += over
        kept_links: tuple[Link, ...] | None = None
        dropped_links = 0
        if links:
            kept = [
                Link(
                    link.context,
                    bounded(link.attributes, limits.max_link_attributes, limits.max_length),
                )
                for link in links
                if link and _is_valid_link(link.context, link.attributes)
            ]
            if len(kept) > limits.max_links:
                dropped_links = len(kept) - limits.max_links
                kept = kept[dropped_links:]
            kept_links = tuple(kept) or None
        journey = pipeline.journeys.of(entries) if entries else None
        span = FastSpan(
            self,
            name,
            span_context,
            parent,
            kind,
            values,
            dropped,
            kept_links,
            dropped_links,
            start_time if start_time is not None else pipeline.clock(),
            None if pipeline.stamp else journey,
            record_exception,
            set_status_on_exception,
        )
        if journey is not None and pipeline.stamp:
            for key, value in journey:
                span.set_attribute(key, value)
        next(pipeline.started)
        on_start = pipeline.on_start
        if on_start is not None:
            on_start(span, context)
        return span

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = _INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> CurrentSpan:
        return CurrentSpan(
            self,
            (
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            ),
            end_on_exit,
        )

    def finish(self, span: FastSpan) -> None:
        """Called by ``span.end()`` once: hand its record to the pipeline."""
        self._pipeline.finish(span)


class CurrentSpan:
    """``with tracer.start_as_current_span(...) as span``: start, make current, end.

    An exception escaping the block is recorded on the span and sets an ``ERROR``
    status (when the span is recording and the flags ask for it), then propagates,
    as with ``opentelemetry.trace.use_span``.
    """

    __slots__ = ("_args", "_end_on_exit", "_span", "_token", "_tracer")

    def __init__(self, tracer: FastTracer, args: tuple[Any, ...], end_on_exit: bool) -> None:
        self._tracer = tracer
        self._args = args
        self._end_on_exit = end_on_exit

    def __enter__(self) -> trace_api.Span:
        # The current context read once: the parent (unless the caller named a context)
        # and the context the span is made current in, as use_span() does.
        current = _get_current()
        args = self._args
        span = self._span = self._tracer.start_span(
            args[0], args[1] if args[1] is not None else current, *args[2:]
        )
        self._token = _attach(_set_span_in_context(span, current))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            _detach(self._token)
        finally:
            if exc is not None and isinstance(exc, Exception) and span.is_recording():
                args = self._args
                if args[6]:  # record_exception
                    span.record_exception(exc)
                if args[7]:  # set_status_on_exception
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            if self._end_on_exit:
                span.end()

    def __call__(self, function: _F) -> _F:
        """Used as a decorator: each call of ``function`` runs in a span of its own."""
        tracer, args, end_on_exit = self._tracer, self._args, self._end_on_exit
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*a: Any, **kw: Any) -> Any:
                with CurrentSpan(tracer, args, end_on_exit):
                    return await function(*a, **kw)

            return cast(_F, run_async)

        @functools.wraps(function)
        def run(*a: Any, **kw: Any) -> Any:
            with CurrentSpan(tracer, args, end_on_exit):
                return function(*a, **kw)

        return cast(_F, run)

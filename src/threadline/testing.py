"""Test your own services' propagation: a pytest plugin that captures spans in-process.

Installed with Threadline (a ``pytest11`` entry point), it offers the fixture
``threadline_spans``: every span finished during the test, captured in memory with
no server and no network, with the journey keys and the redaction the exporter would
apply, and with Threadline's propagator (W3C Trace Context + Baggage, the baggage
allow-list) installed globally::

    def test_checkout_keeps_the_journey(threadline_spans):
        with threadline.journey(session_id="s-1"):
            client.post("/checkout")
        assert_one_trace(
            threadline_spans.spans, services=["shop"], journey={"session.id": "s-1"}
        )

A second fixture, ``threadline_probe``, proves propagation across real processes:
it sends a synthetic journey (a URL or a probe plan, see ``threadline.probing``) to
services the test started, waits for their traces at a Threadline server they export
to, and fails the test with the verdict (which hop broke, between which services)::

    def test_checkout_propagates(threadline_probe, shop):
        threadline_probe("probe.toml", server=shop.threadline_url)

Nothing leaves the process during a test run: a ``threadline.configure()`` that the
code under test calls (at import, in a conftest, or in a test) installs journey
stamping instead of the exporter and the sampling-rule poller, whatever endpoint its
settings name. A run that should export asks for it with ``pytest --threadline-export``
or ``threadline_export = true`` in the pytest ini options.

OpenTelemetry allows one global ``TracerProvider`` per process: the first use of the
fixture installs one (unless ``threadline.configure()`` or the host already did, in
which case the capture is added to that provider), and later tests share it; the
capture is emptied before each test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from threadline import conventions
from threadline.probing.plan import Plan, load_plan, single_request
from threadline.probing.runner import DEFAULT_WAIT_S, ProbeRun, api_fetcher, run_probe
from threadline.probing.verdict import render

if TYPE_CHECKING:
    # Loaded on first capture: pytest loads this plugin in every run, which must stay cheap.
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = [
    "SpanCapture",
    "assert_one_trace",
    "capture_spans",
    "services_in_order",
    "threadline_spans",
    "trace_id_of",
]

DEFAULT_TEST_SERVICE: Final = "test-service"
EXPORT_OPTION: Final = "--threadline-export"
EXPORT_INI: Final = "threadline_export"

_lock = threading.Lock()
_capture: SpanCapture | None = None


class SpanCapture:
    """Finished spans of this process, in the order they ended."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def clear(self) -> None:
        self._exporter.clear()

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called ``name``."""
        return [span for span in self.spans if span.name == name]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        EXPORT_OPTION,
        action="store_true",
        default=False,
        help="let threadline.configure() export spans during the run (default: they stay "
        "in the process, seen by the threadline_spans fixture)",
    )
    parser.addini(
        EXPORT_INI,
        type="bool",
        default=False,
        help="let threadline.configure() export spans during the run",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before the first conftest is imported: one may import the service, which calls
    # configure() at import time.
    _keep_spans_unless_asked(early_config)


def pytest_configure(config: pytest.Config) -> None:
    _keep_spans_unless_asked(config)  # also when the plugin is loaded late (``-p``)


def pytest_unconfigure(config: pytest.Config) -> None:
    from threadline.sdk import in_process

    in_process.keep_spans_in_process(False)


def _keep_spans_unless_asked(config: pytest.Config) -> None:
    from threadline.sdk import in_process  # a module without imports: cheap

    # Before pytest_configure only the early parse of the command line is there.
    early = getattr(config, "known_args_namespace", None)
    asked = (
        bool(getattr(early, EXPORT_INI, False))
        or bool(config.getoption(EXPORT_OPTION, default=False))
        or bool(config.getini(EXPORT_INI))
    )
    in_process.keep_spans_in_process(not asked)


def capture_spans(service_name: str = DEFAULT_TEST_SERVICE) -> SpanCapture:
    """The process-wide capture, installing it on first use (see the module docstring)."""
    global _capture
    with _lock:
        if _capture is not None:
            return _capture
        # Imported here: loading the plugin must not load the SDK pipeline.
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from threadline.redaction.configured import redactor_from_settings
        from threadline.sdk import setup
        from threadline.sdk.fast import FastTracerProvider
        from threadline.sdk.processors import JourneyStampingProcessor
        from threadline.sdk.redaction_processor import RedactingSpanExporter

        exporter = InMemorySpanExporter()
        provider = trace.get_tracer_provider()
        configured = setup.active()
        if not isinstance(provider, TracerProvider | FastTracerProvider):
            provider = TracerProvider(
                resource=Resource.create({conventions.SERVICE_NAME: service_name})
            )
            trace.set_tracer_provider(provider)
            propagate.set_global_textmap(setup.global_propagator())
        # The journey keys on each span as the exporter writes them: configure() adds them
        # only when a span is exported, unless spans stay in the process (stamping twice
        # sets the same values).
        provider.add_span_processor(JourneyStampingProcessor(setup.active_pseudonymizer()))
        captured: SpanExporter = exporter
        if configured is not None and configured.enabled:
            # What configure()'s exporter would send is redacted as its settings say.
            settings = configured.settings
            redactor = redactor_from_settings(settings, fallback_hash_key=settings.user_id_key)
            if redactor is not None:
                captured = RedactingSpanExporter(exporter, redactor)
        provider.add_span_processor(SimpleSpanProcessor(captured))
        _capture = SpanCapture(exporter)
        return _capture


@pytest.fixture
def threadline_spans() -> Iterator[SpanCapture]:
    """Spans finished during this test, captured in memory (emptied before the test)."""
    capture = capture_spans()
    capture.clear()
    yield capture
    capture.clear()


def trace_id_of(span: ReadableSpan) -> str:
    """The span's trace id as 32 hex digits."""
    return f"{span.context.trace_id:032x}" if span.context is not None else ""


def services_in_order(spans: Sequence[ReadableSpan]) -> list[str]:
    """Each service once, in the order of its first span's start."""
    ordered = sorted(spans, key=lambda span: span.start_time or 0)
    seen: list[str] = []
    for span in ordered:
        service = str(span.resource.attributes.get(conventions.SERVICE_NAME, ""))
        if service not in seen:
            seen.append(service)
    return seen


def assert_one_trace(
    spans: Sequence[ReadableSpan],
    *,
    services: Sequence[str] | None = None,
    journey: Mapping[str, str] | None = None,
    kinds: Mapping[str, SpanKind] | None = None,
) -> str:
    """Assert ``spans`` form one connected trace; returns its trace id.

    Checks that there is at least one span, that all share one trace id, that exactly
    one span has no parent among them (the root; its parent may be remote), and,
    when given: the services in the order they first appear (``services``), the
    journey keys every span carries (``journey``), and the kind of the spans of each
    name (``kinds``).
    """
    assert spans, "expected one trace, got no spans"
    trace_ids = {trace_id_of(span) for span in spans}
    assert len(trace_ids) == 1, f"expected one trace, got {len(trace_ids)}: {_describe(spans)}"
    ids = {span.context.span_id for span in spans if span.context is not None}
    roots = [span for span in spans if span.parent is None or span.parent.span_id not in ids]
    assert len(roots) == 1, (
        f"expected one root, got {[span.name for span in roots]}: spans whose parent is "
        "missing broke the trace"
    )
    if services is not None:
        assert services_in_order(spans) == list(services), (
            f"services {services_in_order(spans)} != expected {list(services)}"
        )
    if journey is not None:
        for span in spans:
            attributes = span.attributes or {}
            carried = {key: attributes.get(key) for key in journey}
            assert carried == dict(journey), f"span {span.name!r} carries {carried}, not {journey}"
    if kinds is not None:
        for name, kind in kinds.items():
            named = [span for span in spans if span.name == name]
            assert named, f"no span named {name!r}: {_describe(spans)}"
            assert all(span.kind == kind for span in named), f"{name!r} is not {kind}"
    return trace_ids.pop()


def _describe(spans: Sequence[ReadableSpan]) -> list[tuple[str, str]]:
    return [(span.name, trace_id_of(span)) for span in spans]


class ProbeFailed(AssertionError):
    """A probe's verdict was FAIL; the message is the verdict as ``threadline probe`` prints it."""


@pytest.fixture
def threadline_probe() -> Callable[..., ProbeRun]:
    """A function that runs a probe and fails the test with its verdict when it fails.

    ``threadline_probe(target, server=URL, services=(...), wait_s=15.0)``: ``target`` is
    a URL (one GET), a path to a probe TOML file, or a ``Plan``; ``services`` adds the
    services a single URL's journey must reach. Returns the ``ProbeRun`` when it passed.
    """

    def probe(
        target: str | Path | Plan,
        *,
        server: str = conventions.DEFAULT_ENDPOINT,
        services: Sequence[str] = (),
        wait_s: float = DEFAULT_WAIT_S,
    ) -> ProbeRun:
        if isinstance(target, Plan):
            plan = target
        elif isinstance(target, Path) or not str(target).startswith(("http://", "https://")):
            plan = load_plan(Path(target))
        else:
            plan = single_request(str(target), services=tuple(services))
        run = run_probe(plan, api_fetcher(server), wait_s=wait_s)
        if not run.verdict.passed:
            base = server.rstrip("/")
            lines = render(run.verdict, lambda trace_id: f"{base}/trace/{trace_id}")
            raise ProbeFailed("\n".join(lines))
        return run

    return probe

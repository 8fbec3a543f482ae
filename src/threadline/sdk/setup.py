"""``configure()`` and ``shutdown()``: the OpenTelemetry pipeline Threadline installs.

One call builds, from :class:`~threadline.settings.SdkSettings`::

    FastTracerProvider(Resource(service.name), ParentBased(RuleSampler))   sdk/fast
      │   (pipeline = "otel": the SDK's TracerProvider, the processor added to it)
      └── ExportProcessor(queue, delay, batch)   sdk/export: compact queue, own encoder,
            │                                     journey keys from baggage, retries
            └── OTLP/HTTP protobuf, gzip → <endpoint>/v1/traces

The fast provider (the default) implements the OpenTelemetry API itself and hands each
ended span's compact record to the export processor; a provider the host installed
before ``configure()`` is joined as before, whatever ``pipeline`` says.

(with ``redaction`` on, the default, the export worker redacts each batch before
encoding it, off the service's threads: sdk/export/pipeline), and makes it global, with
Threadline's W3C Trace Context + Baggage propagator
(B3 accepted on extract) as the global one.
OpenTelemetry allows one global provider per process, so the first successful call
wins and later calls return the same :class:`Configuration`. Under Threadline's pytest
plugin (``sdk/in_process``) the export processor and the rule poller are left out and
journey stamping takes their place: nothing leaves the process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from threadline import conventions
from threadline.redaction.configured import redactor_from_settings
from threadline.sdk import in_process
from threadline.sdk.allowlist import BaggageAllowListPropagator, HostAllowList
from threadline.sdk.exit_hooks import flush_on_sigterm
from threadline.sdk.export import pipeline as export_pipeline
from threadline.sdk.fast import FastTracerProvider
from threadline.sdk.guard import logger, report_internal_error
from threadline.sdk.log_export.setup import install_logs, level_of, shutdown_logs
from threadline.sdk.logs import install_log_record_factory
from threadline.sdk.processors import JourneyStampingProcessor
from threadline.sdk.propagation import InboundSession, build_propagator
from threadline.sdk.pseudonym import Pseudonymizer
from threadline.sdk.sampling.head import HeadSampling, head_sampling
from threadline.settings import ENV_PREFIX, ConfigError, SdkSettings, load

_POSITIVE: Final = (
    "export_delay_ms",
    "export_batch_size",
    "queue_size",
    "logs_queue_size",
    "export_timeout_s",
)
_NON_EMPTY: Final = ("service_name", "session_header", "session_cookie")
PIPELINES: Final = ("fast", "otel")
SERVER_INSTRUMENTATIONS: Final = ("threadline", "otel")


@dataclass(frozen=True, slots=True)
class Configuration:
    """What ``configure()`` installed; ``tracer_provider`` is None when tracing is disabled."""

    settings: SdkSettings
    tracer_provider: TracerProvider | FastTracerProvider | None
    pseudonymize_user_id: Callable[[str], str]
    sampling: HeadSampling | None = None

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None


_lock = threading.RLock()
_active: Configuration | None = None
_fallback_pseudonymizer: Pseudonymizer | None = None


def configure(
    service_name: str | None = None, endpoint: str | None = None, **settings: object
) -> Configuration:
    """Install Threadline's tracing pipeline once; later calls return the first configuration.

    Every keyword is a field of :class:`~threadline.settings.SdkSettings`; each one not
    given is read from ``THREADLINE_<NAME>``, then ``threadline.toml`` ``[sdk]``, then
    its default. Raises :class:`~threadline.settings.ConfigError` naming a bad key.
    """
    overrides = {"service_name": service_name, "endpoint": endpoint, **settings}
    with _lock:
        if _active is not None:
            _warn_if_different(_active, overrides)
            return _active
        configured = install(load_settings(overrides))
        install_logs(configured.settings, configured.pseudonymize_user_id)
        return configured


def load_settings(overrides: Mapping[str, object] | None = None) -> SdkSettings:
    """Load SDK settings with the usual precedence and check that they can be used."""
    loaded = load(SdkSettings, overrides)
    _validate(loaded)
    redactor_from_settings(loaded)  # a redaction rule that does not parse fails here
    level_of(loaded)  # an unknown logs_level fails before anything is installed
    return loaded


def install(settings: SdkSettings, exporter: SpanExporter | None = None) -> Configuration:
    """Install the pipeline for ``settings`` (an ``exporter`` replaces OTLP, for benchmarks)."""
    global _active
    with _lock:
        if _active is not None:
            return _active
        pseudonymizer = Pseudonymizer(settings.user_id_key, enabled=settings.pseudonymize_user_id)
        if not settings.enabled:
            _active = Configuration(settings, None, pseudonymizer)
            return _active
        sampling = head_sampling(settings)
        if settings.pipeline == "fast" and isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider
        ):
            fast = _fast_provider(settings, sampling, pseudonymizer, exporter)
            _finish_install(settings, fast)
            _active = Configuration(settings, fast, pseudonymizer, sampling)
            return _active
        provider = _global_provider(settings, sampling.sampler)
        if provider is not None:
            host_provider = provider.sampler is not sampling.sampler
            processors: list[SpanProcessor]
            if in_process.spans_stay_in_process():
                # Under the pytest plugin: the journey keys on the spans, nothing sent.
                processors = [JourneyStampingProcessor(pseudonymizer)]
                logger.debug("Threadline: spans stay in this process (pytest plugin)")
            else:
                if not host_provider:
                    sampling.start()
                # A host's own provider may have its own exporters: they need the journey
                # keys on the span itself, so those are stamped in process there.
                processors = export_pipeline.export_processors(
                    settings, provider, pseudonymizer, exporter, stamp_in_process=host_provider
                )
            for processor in processors:
                provider.add_span_processor(processor)
            _finish_install(settings, provider)
        _active = Configuration(settings, provider, pseudonymizer, sampling)
        return _active


def _fast_provider(
    settings: SdkSettings,
    sampling: HeadSampling,
    pseudonymizer: Pseudonymizer,
    exporter: SpanExporter | None,
) -> FastTracerProvider:
    """Threadline's own provider (``sdk/fast``), made global, with export wired to it."""
    stay = in_process.spans_stay_in_process()
    provider = FastTracerProvider(
        service_resource(settings),
        sampling.sampler,
        sampling.rule_sampler,
        pseudonymizer,
        # In process (pytest plugin) or when asked: the journey keys on the span itself.
        stamp=stay or settings.stamp_span_attributes,
    )
    trace.set_tracer_provider(provider)
    if stay:
        logger.debug("Threadline: spans stay in this process (pytest plugin)")
    elif exporter is not None:
        # Benchmarks comparing with the stock pipeline: its batch processor, adapted.
        for processor in export_pipeline.export_processors(
            settings, TracerProvider(resource=provider.resource), pseudonymizer, exporter
        ):
            provider.add_span_processor(processor)
        sampling.start()
    else:
        sampling.start()
        provider.set_export(
            export_pipeline.export_processor(
                settings, provider.resource, None, export_pipeline.export_redactor(settings)
            )
        )
    return provider


def _finish_install(settings: SdkSettings, provider: TracerProvider | FastTracerProvider) -> None:
    propagate.set_global_textmap(global_propagator(settings))
    install_log_record_factory()
    flush_on_sigterm(provider.shutdown)


def service_resource(settings: SdkSettings) -> Resource:
    """The resource of a provider ``configure()`` builds: ``service.name``, ``host.name``,
    the environment, and what ``OTEL_RESOURCE_ATTRIBUTES`` adds."""
    return Resource.create(
        {
            conventions.SERVICE_NAME: settings.service_name,
            **export_pipeline.resource_attributes(settings),
        }
    )


def global_propagator(settings: SdkSettings | None = None) -> TextMapPropagator:
    """The propagator installed as the global one: baggage only to allowed hosts, and a
    session from the session header or cookie when no baggage names one."""
    resolved = settings or active_settings()
    session = InboundSession(resolved.session_header, resolved.session_cookie)
    return BaggageAllowListPropagator(build_propagator(inbound_session=session))


def shutdown() -> None:
    """Export what is buffered and stop the pipeline; tracing stays off afterwards."""
    shutdown_logs()
    with _lock:
        provider = _active.tracer_provider if _active is not None else None
        sampling = _active.sampling if _active is not None else None
    if sampling is not None:
        sampling.stop()
    if provider is None:
        return
    try:
        provider.shutdown()
    except Exception:
        report_internal_error("shutdown")


def active() -> Configuration | None:
    """The installed configuration, or None before ``configure()``."""
    return _active


def active_settings() -> SdkSettings:
    """Settings of the installed configuration, else loaded from env and ``threadline.toml``."""
    if _active is not None:
        return _active.settings
    try:
        return load_settings()
    except ConfigError as exc:
        logger.error("Threadline: %s; using default settings until configure() succeeds", exc)
        return SdkSettings()


def active_pseudonymizer() -> Callable[[str], str]:
    """The user-id pseudonymiser ``journey()`` and inbound hooks use, even before configure()."""
    global _fallback_pseudonymizer
    if _active is not None:
        return _active.pseudonymize_user_id
    with _lock:
        if _fallback_pseudonymizer is None:
            settings = active_settings()
            _fallback_pseudonymizer = Pseudonymizer(
                settings.user_id_key, enabled=settings.pseudonymize_user_id
            )
        return _fallback_pseudonymizer


def _global_provider(settings: SdkSettings, sampler: Sampler) -> TracerProvider | None:
    existing = trace.get_tracer_provider()
    if isinstance(existing, trace.ProxyTracerProvider):
        provider = TracerProvider(resource=service_resource(settings), sampler=sampler)
        trace.set_tracer_provider(provider)
        return provider
    if isinstance(existing, TracerProvider):
        # The host set up OpenTelemetry itself: add to its pipeline rather than fight it.
        logger.warning(
            "Threadline: a TracerProvider was already installed; adding journey stamping and "
            "export to it (its resource, not service_name=%r, names the service)",
            settings.service_name,
        )
        return existing
    logger.warning(
        "Threadline: a non-SDK TracerProvider (%s) is installed; Threadline exports nothing",
        type(existing).__name__,
    )
    return None


def _validate(settings: SdkSettings) -> None:
    for name in _POSITIVE:
        value = getattr(settings, name)
        if not value > 0:
            raise _invalid(name, value, "must be greater than 0")
    if settings.export_batch_size > settings.queue_size:
        raise _invalid(
            "export_batch_size",
            settings.export_batch_size,
            f"must not exceed queue_size ({settings.queue_size})",
        )
    for name in _NON_EMPTY:
        value = getattr(settings, name)
        if not value.strip():
            raise _invalid(name, value, "must not be empty")
    if settings.pipeline not in PIPELINES:
        raise _invalid("pipeline", settings.pipeline, f"must be one of {PIPELINES}")
    if settings.server_instrumentation not in SERVER_INSTRUMENTATIONS:
        raise _invalid(
            "server_instrumentation",
            settings.server_instrumentation,
            f"must be one of {SERVER_INSTRUMENTATIONS}",
        )
    HostAllowList.parse(settings.baggage_allowed_hosts)  # raises ConfigError naming the entry
    parts = urlsplit(settings.endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("endpoint", settings.endpoint, "must be an http:// or https:// URL")
    export_pipeline.validate(settings)


def _invalid(name: str, value: object, problem: str) -> ConfigError:
    return ConfigError(f"{name} ({ENV_PREFIX}{name.upper()}): {problem}, got {value!r}")


def _warn_if_different(current: Configuration, overrides: Mapping[str, object]) -> None:
    requested = {k: v for k, v in overrides.items() if v is not None}
    differing = sorted(k for k, v in requested.items() if getattr(current.settings, k, v) != v)
    if differing:
        logger.warning(
            "Threadline is already configured; configure() ignored new values for %s",
            ", ".join(differing),
        )

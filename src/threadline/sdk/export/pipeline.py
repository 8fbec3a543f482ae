"""What ``configure()`` adds to the TracerProvider for export, and ``threadline.stats()``.

Decided once, at configure time, so the per-span path does no branching:

- default: one :class:`ExportProcessor` that also captures the journey keys;
- ``stamp_span_attributes``, or a TracerProvider the host built itself: the journey
  stamping processor first (attributes set on the
  live span, visible to the host's other processors), then an ``ExportProcessor`` that
  captures nothing more;
- an explicit ``SpanExporter`` (benchmarks comparing with the stock pipeline): the
  stamping processor and OpenTelemetry's ``BatchSpanProcessor`` around it.

With ``redaction`` on (the default) every one of these redacts on its export thread,
never on the thread that ends the span: the ``ExportProcessor`` is given the redactor
and applies it to each batch of compact records before encoding (journey keys
included); an explicit exporter is wrapped in ``RedactingSpanExporter``. Only what
Threadline exports is redacted: exporters a host added to its own provider see the
host's spans as the host made them, as they would without Threadline.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from threadline.redaction import Redactor
from threadline.redaction.configured import redactor_from_settings
from threadline.sdk.export.processor import ExportProcessor
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.export.stats import ExportStats
from threadline.sdk.export.transport import HeadersError, TransportConfig, parse_headers
from threadline.sdk.processors import JourneyStampingProcessor
from threadline.sdk.redaction_processor import RedactingSpanExporter
from threadline.settings import ENV_PREFIX, ConfigError, SdkSettings

ENVIRONMENT_ATTRIBUTE: Final = "deployment.environment.name"
# OpenTelemetry semantic convention: spans that share a host share a clock, which is
# how the server tells real clock skew from a child that merely ends after its parent.
HOST_NAME_ATTRIBUTE: Final = "host.name"
COMPRESSIONS: Final = ("gzip", "none")
_POSITIVE: Final = ("retry_deadline_s", "retry_backoff_s", "shutdown_timeout_s")
_NOT_NEGATIVE: Final = ("stats_interval_s",)

_processors: weakref.WeakSet[ExportProcessor] = weakref.WeakSet()
_lock = threading.Lock()
_log_stats: Callable[[], ExportStats] | None = None


def resource_attributes(settings: SdkSettings) -> dict[str, str]:
    """Resource attributes export adds: the host's name and the deployment environment,
    when one is set. A ``host.name`` the host's own resource states takes precedence."""
    attributes = {HOST_NAME_ATTRIBUTE: socket.gethostname()}
    if settings.environment:
        attributes[ENVIRONMENT_ATTRIBUTE] = settings.environment
    return attributes


def _attribute_limits() -> tuple[int, ...]:
    """The lengths OpenTelemetry cuts attribute values to as they are set (its span
    limits, from OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT), decided once at configure time."""
    limits = SpanLimits()
    lengths = (limits.max_attribute_length, limits.max_span_attribute_length)
    return tuple(length for length in lengths if length)


def export_processors(
    settings: SdkSettings,
    provider: TracerProvider,
    pseudonymize_user_id: Callable[[str], str],
    exporter: SpanExporter | None = None,
    stamp_in_process: bool = False,
) -> list[SpanProcessor]:
    """The processors to add, in order (see the module docstring); ``stamp_in_process``
    forces in-process stamping (the host built the provider and may export it itself)."""
    stamp = settings.stamp_span_attributes or stamp_in_process
    # Raises ConfigError naming a redaction setting that does not parse.
    redactor = export_redactor(settings)
    if exporter is not None:
        if redactor is not None:
            exporter = RedactingSpanExporter(exporter, redactor)
        return [
            JourneyStampingProcessor(pseudonymize_user_id),
            BatchSpanProcessor(
                exporter,
                max_queue_size=settings.queue_size,
                schedule_delay_millis=settings.export_delay_ms,
                max_export_batch_size=settings.export_batch_size,
                export_timeout_millis=settings.export_timeout_s * 1000,
            ),
        ]
    processor = export_processor(
        settings, provider.resource, None if stamp else pseudonymize_user_id, redactor
    )
    if stamp:
        return [JourneyStampingProcessor(pseudonymize_user_id), processor]
    return [processor]


def export_processor(
    settings: SdkSettings,
    resource: Resource,
    pseudonymize_user_id: Callable[[str], str] | None,
    redactor: Redactor | None,
) -> ExportProcessor:
    """The export processor for ``settings``, registered for ``threadline.stats()``; it
    captures the journey keys itself when given ``pseudonymize_user_id``."""
    processor = ExportProcessor(
        transport_config(settings),
        queue_size=settings.queue_size,
        batch_size=settings.export_batch_size,
        delay_s=settings.export_delay_ms / 1000,
        retry=RetryPolicy(
            deadline_s=settings.retry_deadline_s, initial_backoff_s=settings.retry_backoff_s
        ),
        shutdown_timeout_s=settings.shutdown_timeout_s,
        resource=resource,
        resource_defaults=resource_attributes(settings),
        pseudonymize_user_id=pseudonymize_user_id,
        stats_interval_s=settings.stats_interval_s,
        redactor=redactor,
    )
    with _lock:
        _processors.add(processor)
    return processor


def export_redactor(settings: SdkSettings) -> Redactor | None:
    """The redactor export applies (None with ``redaction`` off); raises ConfigError."""
    return redactor_from_settings(
        settings, fallback_hash_key=settings.user_id_key, cut_lengths=_attribute_limits()
    )


OTEL_HEADER_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")


def headers_text(settings: SdkSettings) -> str:
    """The headers setting, else the OpenTelemetry exporter's variables (read at configure
    time), so services set up with the stock exporter keep sending their token."""
    if settings.headers:
        return settings.headers
    for variable in OTEL_HEADER_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return ""


def _otel_file(setting: str, name: str) -> str:
    """A TLS file setting, else the OpenTelemetry exporter's variable for it."""
    traces = os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}", "")
    return setting or traces or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}", "")


def transport_config(settings: SdkSettings) -> TransportConfig:
    return TransportConfig(
        headers=parse_headers(headers_text(settings)),
        endpoint=settings.endpoint,
        timeout_s=settings.export_timeout_s,
        compression=settings.compression,
        ca_file=_otel_file(settings.ca_file, "CERTIFICATE"),
        client_cert=_otel_file(settings.client_cert, "CLIENT_CERTIFICATE"),
        client_key=_otel_file(settings.client_key, "CLIENT_KEY"),
    )


def report_log_stats(source: Callable[[], ExportStats] | None) -> None:
    """Set (or clear, with None) where :func:`stats` reads the log pipeline's counters.

    The log pipeline calls this when it starts and stops: it depends on this module,
    never the other way round.
    """
    global _log_stats
    _log_stats = source


def stats() -> ExportStats:
    """Export counters of this process: exported, dropped by reason, retried, queued;
    ``logs`` holds the same for log records when ``configure(logs=True)`` is on.

    All zeros before ``configure()``, when tracing is disabled, or when a benchmark
    replaced the exporter.
    """
    spans = _span_stats()
    source = _log_stats
    if source is None:
        return spans
    return dataclasses.replace(spans, logs=source())


def _span_stats() -> ExportStats:
    with _lock:
        processors = list(_processors)
    if not processors:
        return ExportStats()
    if len(processors) == 1:
        return processors[0].stats()
    snapshots = [p.stats() for p in processors]
    dropped: dict[str, int] = {}
    for snapshot in snapshots:
        for reason, count in snapshot.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
    return ExportStats(
        exported=sum(s.exported for s in snapshots),
        dropped=MappingProxyType(dropped),
        retried=sum(s.retried for s in snapshots),
        failed_requests=sum(s.failed_requests for s in snapshots),
        queued=sum(s.queued for s in snapshots),
    )


def validate(settings: SdkSettings) -> None:
    """Raise :class:`ConfigError` naming the first export setting that cannot be used."""
    for name in _POSITIVE:
        if not getattr(settings, name) > 0:
            raise _invalid(name, getattr(settings, name), "must be greater than 0")
    for name in _NOT_NEGATIVE:
        if getattr(settings, name) < 0:
            raise _invalid(name, getattr(settings, name), "must not be negative")
    try:
        parse_headers(headers_text(settings))
    except HeadersError as exc:
        raise _invalid(
            "headers", settings.headers or "(from OTEL_EXPORTER_OTLP_*HEADERS)", str(exc)
        ) from exc
    if settings.compression not in COMPRESSIONS:
        raise _invalid("compression", settings.compression, f"must be one of {COMPRESSIONS}")
    for name in ("ca_file", "client_cert", "client_key"):
        path = getattr(settings, name)
        if path and not os.path.isfile(path):
            raise _invalid(name, path, "must name an existing PEM file")
    if settings.client_key and not settings.client_cert:
        raise _invalid("client_key", settings.client_key, "needs client_cert")
    tls_only = settings.ca_file or settings.client_cert
    if tls_only and urlsplit(settings.endpoint).scheme != "https":
        raise _invalid(
            "endpoint", settings.endpoint, "must be https:// when ca_file or client_cert is set"
        )


def _invalid(name: str, value: object, problem: str) -> ConfigError:
    return ConfigError(f"{name} ({ENV_PREFIX}{name.upper()}): {problem}, got {value!r}")

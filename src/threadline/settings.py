"""Settings for both halves, declared once and loaded with one precedence.

Each setting is a field of a frozen dataclass with its documentation in the field's
metadata. A value is taken from, in order: an explicit argument, the environment
variable ``THREADLINE_<NAME>``, the ``[sdk]`` / ``[server]`` table of
``threadline.toml``, then the declared default. A value that cannot be parsed is
an error naming the key: a bad setting is never silently replaced by its default.

The module is long because it is the one declaration of every setting of both halves
(docs/configuration.md's tables are generated from it); the loading code is short,
and splitting the declarations by half would split the one precedence rule with them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from threadline import conventions

ENV_PREFIX: Final = "THREADLINE_"
CONFIG_FILE_ENV: Final = "THREADLINE_CONFIG"
DEFAULT_CONFIG_FILE: Final = "threadline.toml"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key."""


def setting(default: Any, doc: str) -> Any:
    """Declare a setting with its default and the sentence the docs show for it."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class SdkSettings:
    """Settings read by ``threadline.configure`` inside an instrumented service."""

    service_name: str = setting("unknown_service", "`service.name` of every span.")
    endpoint: str = setting(
        conventions.DEFAULT_ENDPOINT,
        "Base URL of the OTLP/HTTP receiver; spans go to `<endpoint>/v1/traces`.",
    )
    enabled: bool = setting(True, "Turn tracing off entirely (no spans, no export).")
    session_header: str = setting(
        conventions.DEFAULT_SESSION_HEADER,
        "Inbound request header that starts a journey when no baggage carries one.",
    )
    session_cookie: str = setting(
        conventions.DEFAULT_SESSION_COOKIE,
        "Inbound cookie that starts a journey when neither baggage nor header does.",
    )
    pseudonymize_user_id: bool = setting(
        True, "Replace `user.id` by a keyed HMAC before it leaves the process."
    )
    user_id_key: str = setting(
        "",
        "Secret key for pseudonymising user ids; set the same value in every service "
        "so one user correlates across services.",
    )
    export_delay_ms: int = setting(1000, "Longest time a finished span waits before export.")
    export_batch_size: int = setting(512, "Most spans sent in one OTLP request.")
    queue_size: int = setting(2048, "Most finished spans held for export; more are dropped.")
    export_timeout_s: float = setting(10.0, "Deadline for one OTLP export request.")
    redaction: bool = setting(
        True,
        "Redact secrets and personal data from spans before export: built-in key rules "
        "(`*password*`, `*token*`, cookies, …), the detectors below, URL query strings "
        "(see docs/privacy.md).",
    )
    redaction_keys: str = setting(
        "",
        "Extra attribute-key rules, comma-separated globs each optionally followed by "
        "`=mask` (default), `=hash`, `=drop` or `=keep`, e.g. `customer.email=hash`; "
        "they win over the built-in rules.",
    )
    redaction_detectors: str = setting(
        "credentials,email,card,jwt,bearer",
        "Detectors run over names, keys and string values, comma-separated, each "
        "optionally `=mask`, `=hash` or `=drop`: `credentials` (URL passwords, "
        "`password=…`), `email`, `card` (Luhn-checked), `jwt`, `bearer` (any "
        "Authorization scheme), `ip`.",
    )
    redaction_hash_key: str = setting(
        "",
        "Secret key of `hash` redactions (keyed HMAC); empty: `user_id_key`. Use the same "
        "value in every service and the server so hashes correlate.",
    )
    baggage_allowed_hosts: str = setting(
        "loopback,private",
        "Comma-separated hosts that outgoing HTTP requests send journey baggage to: "
        "`loopback`, `private`, an IP, a CIDR block, a host name, or `.suffix` for a "
        "domain; other hosts get `traceparent` only.",
    )
    sampling_rules_file: str = setting(
        "",
        "JSON file (or TOML file with a `[sampling]` table) of head-sampling rules used "
        "until the server's arrive; empty: the `[sampling]` table of threadline.toml, else "
        "sample every trace (see docs/sampling.md).",
    )
    sampling_url: str = setting(
        "", "URL the sampling rules are polled from; empty: `<endpoint>/api/sampling`."
    )
    sampling_poll_s: float = setting(
        30.0,
        "Seconds between polls for changed sampling rules (spread by ±20%); 0 turns "
        "polling off and keeps the local rules.",
    )
    environment: str = setting(
        "",
        "Deployment environment (`production`, `staging`, …), sent as the "
        "`deployment.environment.name` resource attribute of every span; empty: not sent.",
    )
    logs: bool = setting(
        False,
        "Export Python `logging` records (structlog through stdlib too) as OTLP logs to "
        "`<endpoint>/v1/logs`, with the current trace, span and journey ids.",
    )
    logs_level: str = setting(
        "warning",
        "Least level of the records `logs` exports: debug, info, warning, error or critical.",
    )
    logs_queue_size: int = setting(
        2048, "Most log records held for export (apart from spans); more are dropped."
    )
    stamp_span_attributes: bool = setting(
        False,
        "Also set the journey keys as span attributes in process (for other processors or "
        "exporters of the host); by default they are added when the span is exported.",
    )
    pipeline: str = setting(
        "fast",
        "Span pipeline: `fast` (Threadline's own TracerProvider on the OpenTelemetry API, "
        "recording straight into the export queue) or `otel` (the OpenTelemetry SDK's "
        "TracerProvider, for hosts that rely on SDK-only features; see "
        "docs/instrumenting.md).",
    )
    server_instrumentation: str = setting(
        "threadline",
        "Server spans of the Flask app given to `instrument()` and of Django: `threadline` "
        "(Threadline's own, the same spans for less) or `otel` (the stock "
        "`opentelemetry-instrumentation-flask` / `-django`, for their metrics, excluded "
        "URLs, captured headers and hooks; see docs/instrumenting.md).",
    )
    compression: str = setting("gzip", "Compression of OTLP requests: `gzip` or `none`.")
    headers: str = setting(
        "",
        "Extra headers of OTLP requests as comma-separated `key=value` pairs, values "
        "URL-encoded (`Authorization=Bearer%20<token>` for an ingest token); empty: "
        "`OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`.",
    )
    ca_file: str = setting(
        "",
        "PEM file of CA certificates that verify an https endpoint; empty: "
        "`OTEL_EXPORTER_OTLP_CERTIFICATE` if set, else the system roots.",
    )
    client_cert: str = setting(
        "", "PEM client certificate presented to an https endpoint (mutual TLS)."
    )
    client_key: str = setting("", "PEM private key of `client_cert` (if not in the same file).")
    retry_deadline_s: float = setting(
        30.0,
        "Longest time one batch is retried (429/502/503/504, connection errors) before its "
        "spans are dropped and counted.",
    )
    retry_backoff_s: float = setting(
        1.0, "First retry waits up to this; the cap doubles per attempt (full jitter)."
    )
    shutdown_timeout_s: float = setting(
        5.0, "Longest time exit or SIGTERM waits to flush the spans still queued."
    )
    stats_interval_s: float = setting(
        60.0,
        "Seconds between `threadline.sdk.stats` spans (the SDK's own export counters); "
        "0: never sent.",
    )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Settings read by ``threadline serve``."""

    host: str = setting(conventions.DEFAULT_HOST, "Address the server listens on.")
    port: int = setting(conventions.DEFAULT_PORT, "Port for OTLP, the API and the UI.")
    db: Path = setting(Path("threadline.duckdb"), "DuckDB file the spans are stored in.")
    store: str = setting(
        "",
        "Where spans are stored, as a URL: `duckdb:///path/file.duckdb`, `chdb:///path/dir` "
        "(ClickHouse's engine in the process), `clickhouse://user:password@host:8123/db` or "
        "`clickhouses://…` (see docs/scale.md); empty: `duckdb:///<db>`. The password is "
        "never logged or shown.",
    )
    max_request_bytes: int = setting(
        8 * 1024 * 1024,
        "Largest OTLP request body accepted, after decompression; larger gets 413.",
    )
    workers: int = setting(
        0,
        "Processes that decode OTLP trace requests, so ingest uses every core; the store "
        "is still written by the server process. 0: one per CPU core; 1: decode inside "
        "the server process.",
    )
    duckdb_threads: int = setting(
        0,
        "Threads DuckDB runs queries on (the embedded default store; not ClickHouse). "
        "0: one per CPU core. Fewer leave cores to the decoding workers: on 2 cores, 1 "
        "raised two-worker ingest by about 5% and made span-reading views (tail causes, "
        "error hotspots) about 1.5× slower (docs/performance.md).",
    )
    write_queue_batches: int = setting(
        256,
        "Most decoded requests waiting for the store; beyond it ingest answers 503.",
    )
    redaction: bool = setting(
        True,
        "Apply the redaction rules at ingest too, to spans from any SDK (spans already "
        "redacted by Threadline's SDK pass through unchanged).",
    )
    redaction_keys: str = setting(
        "",
        "Extra attribute-key rules at ingest, as the SDK's `redaction_keys` "
        "(`glob[=mask|hash|drop|keep]`, comma-separated).",
    )
    redaction_detectors: str = setting(
        "credentials,email,card,jwt,bearer",
        "Detectors run at ingest, as the SDK's `redaction_detectors` (`credentials`, "
        "`email`, `card`, `jwt`, `bearer`, `ip`; each optionally `=mask|hash|drop`).",
    )
    redaction_hash_key: str = setting(
        "",
        "Secret key of `hash` redactions at ingest; set the services' value so hashes "
        "correlate. Empty: a built-in key (a warning is logged when it is used).",
    )
    user_id_key: str = setting(
        "",
        "The services' `user_id_key` (the same `THREADLINE_USER_ID_KEY`), so erasure and "
        "lookups by a raw user id (`threadline journey --user`, `/user/<id>`) find the ids "
        "they pseudonymised; empty: the built-in key the SDK also uses when none is set.",
    )
    max_clock_skew: str = setting(
        "10m",
        "A span that starts further than this after the server received it is moved back "
        "to start at the receive time (keeping its duration) and counted, e.g. `30s`, `1h`.",
    )
    sampling_rules_file: str = setting(
        "",
        "Rules file of an older release, imported into the store once, when the store holds "
        "no rules yet (the rules set through `PUT /api/sampling` live in the store); empty: "
        "`<db>.sampling.json`. Until the first `PUT` or import the `[sampling]` table of "
        "threadline.toml is served.",
    )
    tail_sampling: bool = setting(
        False,
        "Tail sampling: after `tail_window_s` without new spans, delete a trace unless it "
        "has an error, is slow, matches a keep rule or falls in `tail_keep_probability`.",
    )
    tail_window_s: float = setting(
        10.0, "Seconds a trace must stay quiet before tail sampling decides on it."
    )
    tail_keep_probability: float = setting(
        0.1, "Share of the traces that are neither failed, slow nor kept by rule that is kept."
    )
    tail_latency_ms: float = setting(
        1000.0,
        "A trace whose root operation takes longer is slow and kept by tail sampling; "
        "`[sampling.tail] latency_ms` sets it per operation.",
    )
    tail_max_traces: int = setting(
        100_000,
        "Most traces tail sampling waits on at once; beyond it the oldest are decided early.",
    )
    tokens: str = setting(
        "",
        "Access tokens as `role:token` pairs separated by commas (roles: ingest, viewer, "
        "admin). With no tokens at all the server is open, and may only listen on loopback.",
    )
    tokens_file: str = setting(
        "",
        "File of access tokens, one `role token [name]` a line; the token may be given as "
        "`sha256:<hex>` so the file holds no secret (see docs/security.md).",
    )
    insecure: bool = setting(
        False, "Allow listening on a non-loopback address with no tokens (anyone may read)."
    )
    tls_cert: str = setting(
        "", "PEM certificate file; with `tls_key` the server speaks HTTPS only."
    )
    tls_key: str = setting("", "PEM private key file of `tls_cert`.")
    sensitive_fields: str = setting(
        "user.id,client.address,enduser.*",
        "Attribute keys (comma-separated glob patterns) that viewer tokens see masked and "
        "may not filter by; `user.id` also covers the API's `user_id` fields.",
    )
    retention: str = setting(
        "", "Delete spans that started longer ago than this, e.g. `7d`, `12h`; empty keeps all."
    )
    retention_interval: str = setting(
        "1m", "How often retention and `max_db_bytes` are enforced, e.g. `30s`, `5m`."
    )
    max_db_bytes: int = setting(
        0, "Delete the oldest spans while the store uses more bytes than this; 0: no cap."
    )
    max_spans_per_request: int = setting(10_000, "Most spans in one OTLP request; more gets 413.")
    max_attributes_per_span: int = setting(
        1000,
        "Most attributes kept per span, resource, event or link (and items per array or "
        "map value); the rest are dropped and counted in `threadline.dropped_attributes`.",
    )
    max_events_per_span: int = setting(
        1000, "Most events and most links kept per span; the rest are dropped."
    )
    max_attribute_value_length: int = setting(
        32_768,
        "Longest attribute value, span name or status message kept, in characters; longer "
        "is cut and its key listed in the span attribute `threadline.truncated`.",
    )
    max_decompression_ratio: int = setting(
        100, "Most a gzip/deflate body may expand, as a multiple of the bytes sent; more is 413."
    )
    ingest_rate_per_token: int = setting(
        0,
        "Spans per second one token (with no tokens: all clients together) may send, with "
        "one second of burst; each request is charged by its size before it is decoded, "
        "refused ones included; over it answers 429 with Retry-After. 0: no limit.",
    )
    ingest_memory_bytes: int = setting(
        256 * 1024 * 1024,
        "Memory budget of the OTLP requests being read and decoded at once, estimated from "
        "their size before decoding; a request that does not fit answers 503 with "
        "Retry-After.",
    )
    read_concurrency: int = setting(
        2,
        "Most API reads (searches, trace views, aggregates) computed at once; probes, "
        "ingest and the UI's pages never wait for them.",
    )
    read_queue: int = setting(
        32,
        "Most API reads waiting for one of the `read_concurrency` slots; beyond it a read "
        "answers 503 with Retry-After.",
    )
    trace_page_spans: int = setting(
        2000,
        "Most spans in one answer of `GET /api/traces/{id}`; a larger trace is served in "
        "pages (`offset`, `limit`, `next_offset`).",
    )
    header_timeout_s: float = setting(
        10.0,
        "Seconds a client may take to send a request's headers; a slower connection is closed.",
    )
    body_timeout_s: float = setting(
        30.0, "Seconds a client may take to send a request's body; slower answers 408."
    )
    slos_file: str = setting(
        "",
        "SLO file of an older release, imported into the store once, when the store holds no "
        "SLOs yet (the SLOs set through `PUT /api/slos` live in the store); empty: "
        "`<db>.slos.json`. Until the first `PUT` or import the `[[slo]]` tables of "
        "threadline.toml are used.",
    )
    slo_evaluation_interval_s: float = setting(
        30.0,
        "Seconds between evaluations of every SLO's burn rates and alerts (from rollups).",
    )
    slo_min_events: int = setting(
        10,
        "Low-traffic guard: no burn-rate alert fires while a rule's short window holds fewer "
        "events than this; an SLO's `min_events` overrides it (see docs/alerting.md).",
    )
    slo_alert_pending_s: float = setting(
        0.0,
        "Seconds an alert's condition must hold (state `pending`) before it fires; 0 fires "
        "at the first evaluation that finds it, as the workbook's windows already debounce.",
    )
    slo_retry_share: float = setting(
        0.1,
        "Retry storm: an edge SLO alerts when more than this share of its calls in the last "
        "5 minutes were retries; an SLO's `max_retry_share` overrides it.",
    )
    probes_file: str = setting(
        "",
        "Probe file of an older release, imported into the store once, when the store holds "
        "no probes yet (the probes set through `PUT /api/probes` live in the store); empty: "
        "`<db>.probes.json`. Until the first `PUT` or import the `[[probe]]` tables of "
        "threadline.toml are used.",
    )
    drill_concurrency: int = setting(
        2, "Most scheduled probes (drills) running at once; a due probe waits for a slot."
    )
    drill_history: int = setting(
        500,
        "Results kept per scheduled probe (newest first); older ones are deleted as new "
        "ones are saved.",
    )
    external_url: str = setting(
        "",
        "Base URL people reach the server at (e.g. `https://threadline.example.com`), for "
        "links in alerts; empty: `http://<host>:<port>`.",
    )
    alert_webhook_urls: str = setting(
        "",
        "URLs (comma-separated) that receive every alert as an Alertmanager webhook "
        "payload (version 4), as a POST.",
    )
    alertmanager_url: str = setting(
        "",
        "Base URL of an Alertmanager; alerts are posted to its `/api/v2/alerts`, firing "
        "ones again every `alertmanager_resend_s`.",
    )
    alertmanager_resend_s: float = setting(
        60.0,
        "Seconds between re-sends of a firing alert to `alertmanager_url`; keep it well "
        "under the Alertmanager's `resolve_timeout` (5m by default).",
    )
    slack_webhook_url: str = setting(
        "", "Slack incoming-webhook URL that receives every alert as a readable message."
    )

    @property
    def serves_tls(self) -> bool:
        """Whether the server answers HTTPS (both a certificate and its key are set)."""
        return bool(self.tls_cert and self.tls_key)


SettingsT = TypeVar("SettingsT", SdkSettings, ServerSettings)

_SECTION: Final[dict[type, str]] = {SdkSettings: "sdk", ServerSettings: "server"}


def load(
    cls: type[SettingsT],
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> SettingsT:
    """Build ``cls`` from arguments > environment > ``threadline.toml`` > defaults."""
    environ = os.environ if environ is None else environ
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - names
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(names)}")
    from_file = _read_section(cls, environ, config_file)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        env_key = ENV_PREFIX + f.name.upper()
        if f.name in overrides:
            raw, source = overrides[f.name], f"argument {f.name}"
        elif env_key in environ:
            raw, source = environ[env_key], env_key
        elif f.name in from_file:
            raw, source = from_file[f.name], f"[{_SECTION[cls]}] {f.name} in threadline.toml"
        else:
            continue
        values[f.name] = _coerce(raw, hints[f.name], source)
    return cls(**values)


def describe(cls: type) -> list[tuple[str, str, str, str]]:
    """(name, env var, default, doc) for every setting, for docs and `--help`."""
    return [
        (f.name, ENV_PREFIX + f.name.upper(), _toml_literal(f.default), f.metadata["doc"])
        for f in dataclasses.fields(cls)
    ]


def markdown_table(cls: type) -> str:
    """The reference table that docs/configuration.md carries for ``cls``."""
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for name, env_var, default, doc in describe(cls):
        rows.append(f"| `{name}` | `{env_var}` | `{default}` | {doc} |")
    return "\n".join(rows)


def _toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    return str(value)


def _read_section(cls: type, environ: Mapping[str, str], path: Path | None) -> dict[str, Any]:
    if path is None:
        explicit = environ.get(CONFIG_FILE_ENV)
        path = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
        if not explicit and not path.exists():
            return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = document.get(_SECTION[cls], {})
    if not isinstance(section, dict):
        raise ConfigError(f"[{_SECTION[cls]}] in {path} must be a table")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(section) - known
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in [{_SECTION[cls]}] of {path}; "
            f"known: {sorted(known)}"
        )
    return section


def _coerce(raw: Any, annotation: Any, source: str) -> Any:
    target = _plain_type(annotation)
    try:
        if target is bool:
            return _to_bool(raw)
        if target is int:
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if target is float:
            return float(raw)
        if target is Path:
            return Path(raw)
        if target is str:
            if not isinstance(raw, str):
                raise ValueError("expected a string")
            return raw
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid value {raw!r}: {exc}") from exc
    raise ConfigError(f"{source}: unsupported setting type {annotation!r}")


def _plain_type(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")

"""``threadline doctor``: what the SDK would do in this environment, and what is wrong.

Run it where the service runs (same environment variables, same working directory
for ``threadline.toml``). It reports:

- the effective SDK configuration, each value with where it came from (argument,
  ``THREADLINE_*`` variable, ``threadline.toml``, default), and any invalid value;
- which frameworks and clients are installed, and whether the OpenTelemetry
  instrumentation that ``threadline.instrument()`` turns on for each is installed too;
- which propagators ``configure()`` installs;
- the server's ``store`` when ``THREADLINE_STORE`` is set, its password masked;
- whether the endpoint is reachable and accepts a real OTLP request with one test span
  (named ``threadline.doctor``) — sent with the SDK's own encoder and transport;
- when the endpoint is a Threadline server, whether its alert receivers deliver
  (``doctor_alerts``; reading them needs a viewer token in ``THREADLINE_TOKEN``).

Each finding is information, a warning or a problem, and warnings and problems come
with what to do about them. Only a problem — something that breaks tracing: an
invalid setting, an endpoint that cannot be reached or refuses the test span — makes
the exit status 1, so the command can gate a deployment; on a laptop with
``threadline serve`` running, a fresh install passes. A missing user-id key is a
warning, and a problem only where ``environment`` is ``production``. A framework or
client without its instrumentation is a warning when the service installed it, and
information when it is there only because another package needs it (``starlette``
under ``fastapi``, ``urllib3`` under ``requests``).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import re
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import click

from threadline import conventions, store_url
from threadline import settings as settings_module
from threadline.sdk.export.retry import Outcome
from threadline.settings import ConfigError, SdkSettings

DOCTOR_SPAN_NAME: Final = "threadline.doctor"
# The environment name where a missing user-id key is a problem, not a warning.
PRODUCTION: Final = "production"

# (import name, distribution, instrumentation distribution or "" when Threadline's own
# integration covers it, the extra of threadline that installs it, what it is)
Library = tuple[str, str, str, str, str]
LIBRARIES: Final[tuple[Library, ...]] = (
    ("flask", "flask", "opentelemetry-instrumentation-flask", "flask", "web framework"),
    ("fastapi", "fastapi", "opentelemetry-instrumentation-fastapi", "fastapi", "web framework"),
    ("starlette", "starlette", "opentelemetry-instrumentation-asgi", "starlette", "web framework"),
    ("django", "django", "opentelemetry-instrumentation-django", "django", "web framework"),
    ("aiohttp", "aiohttp", "opentelemetry-instrumentation-aiohttp-client", "aiohttp",
     "HTTP client/server"),
    ("requests", "requests", "opentelemetry-instrumentation-requests", "requests", "HTTP client"),
    ("httpx", "httpx", "opentelemetry-instrumentation-httpx", "httpx", "HTTP client"),
    ("urllib3", "urllib3", "opentelemetry-instrumentation-urllib3", "urllib3", "HTTP client"),
    ("grpc", "grpcio", "opentelemetry-instrumentation-grpc", "grpc", "RPC"),
    ("celery", "celery", "opentelemetry-instrumentation-celery", "celery", "task queue"),
    ("pika", "pika", "", "", "RabbitMQ client (threadline.sdk.integrations.rabbitmq)"),
    ("kafka", "kafka-python", "", "", "Kafka client (threadline.sdk.integrations.kafka)"),
    ("redis", "redis", "", "", "Redis streams (threadline.sdk.integrations.redis_streams)"),
    ("nats", "nats-py", "", "", "NATS client (threadline.sdk.integrations.nats)"),
    ("paho", "paho-mqtt", "", "", "MQTT client (threadline.sdk.integrations.mqtt)"),
)  # fmt: skip

# info: for the record; warning: worth fixing, tracing works; problem: tracing breaks.
Severity = Literal["info", "warning", "problem"]
MARKS: Final[dict[str, str]] = {"info": "·", "warning": "!", "problem": "✗"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report; warnings and problems say what to do in ``advice``."""

    section: str
    subject: str
    detail: str
    advice: str = ""
    severity: Severity = "info"

    @property
    def problem(self) -> bool:
        return self.severity == "problem"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--no-send", is_flag=True, help="Do not send the test span to the endpoint.")
def doctor(as_json: bool, no_send: bool) -> None:
    """Check the SDK's configuration, instrumentation, propagators and endpoint."""
    findings = diagnose(send_test_span=not no_send)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(f) for f in findings], indent=2))
    else:
        click.echo(render(findings))
    if any(f.problem for f in findings):
        raise SystemExit(1)


def diagnose(send_test_span: bool = True) -> list[Finding]:
    """Every finding about this process's environment, in report order."""
    environ = dict(os.environ)
    findings, loaded = configuration_findings(environ)
    findings += store_findings(environ)
    findings += library_findings()
    findings += propagator_findings(loaded, environ)
    if loaded is not None:
        findings += endpoint_findings(loaded, send_test_span)
        if send_test_span:
            from threadline.cli.doctor_alerts import alert_delivery_findings

            findings += alert_delivery_findings(loaded.endpoint)
    return findings


def render(findings: list[Finding]) -> str:
    lines: list[str] = []
    section = ""
    for finding in findings:
        if finding.section != section:
            section = finding.section
            lines.append(f"\n{section}")
        lines.append(f"  {MARKS[finding.severity]} {finding.subject}: {finding.detail}")
        if finding.advice:
            lines.append(f"      → {finding.advice}")
    problems = sum(f.severity == "problem" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    summary = f"{problems} problem(s) found" if problems else "No problems found"
    lines.append(f"\n{summary}" + (f", {warnings} warning(s)." if warnings else "."))
    return "\n".join(lines).lstrip("\n")


# --- configuration ---------------------------------------------------------------------


def configuration_findings(environ: dict[str, str]) -> tuple[list[Finding], SdkSettings | None]:
    section = "Configuration (SDK)"
    sources, file_problem = _sources(environ)
    findings = []
    if file_problem:
        findings.append(
            Finding(section, "threadline.toml", file_problem, "fix the file", "problem")
        )
    loaded: SdkSettings | None
    try:
        from threadline.sdk.setup import load_settings

        loaded = load_settings()
    except ConfigError as exc:
        findings.append(
            Finding(section, "invalid setting", str(exc), "fix the value named above", "problem")
        )
        loaded = None
    shown = loaded or SdkSettings()
    for field in dataclasses.fields(SdkSettings):
        value = getattr(shown, field.name)
        if field.name in ("user_id_key", "headers") and value:
            value = "(set)"  # secrets: a key, a token
        findings.append(
            Finding(section, field.name, f"{value!r}  ({sources.get(field.name, 'default')})")
        )
    if loaded is not None:
        if not loaded.enabled:
            findings.append(Finding(section, "tracing", "disabled: configure() installs nothing"))
        if loaded.pseudonymize_user_id and not loaded.user_id_key:
            findings.append(_user_id_key_finding(section, loaded.environment))
    return findings, loaded


def store_findings(environ: dict[str, str]) -> list[Finding]:
    """The server's ``store`` from ``THREADLINE_STORE``, shown without its password."""
    value = environ.get(settings_module.ENV_PREFIX + "STORE")
    if value is None:
        return []
    section = "Configuration (server)"
    try:
        parsed = store_url.parse(value)
    except ConfigError as exc:  # its message masks the password
        return [Finding(section, "store", str(exc), "fix THREADLINE_STORE", "problem")]
    return [Finding(section, "store", f"{parsed.redacted}  (THREADLINE_STORE)")]


def _user_id_key_finding(section: str, environment: str) -> Finding:
    # On a laptop the public key is harmless; in production it leaks who did what.
    in_production = environment.strip().lower() == PRODUCTION
    where = f"environment is {environment!r}" if in_production else "not in production"
    return Finding(
        section,
        "user_id_key",
        "empty: user ids are pseudonymised with the public default key, which anyone "
        f"can reverse by guessing ids ({where})",
        "set THREADLINE_USER_ID_KEY to one secret shared by every service",
        "problem" if in_production else "warning",
    )


def _sources(environ: dict[str, str]) -> tuple[dict[str, str], str]:
    """Where each SDK setting comes from (same precedence as ``settings.load``)."""
    explicit = environ.get(settings_module.CONFIG_FILE_ENV)
    path = Path(explicit) if explicit else Path(settings_module.DEFAULT_CONFIG_FILE)
    from_file: dict[str, Any] = {}
    problem = ""
    if path.exists():
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("sdk", {})
            from_file = section if isinstance(section, dict) else {}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problem = f"{path} cannot be read: {exc}"
    elif explicit:
        problem = f"{path} (from {settings_module.CONFIG_FILE_ENV}) does not exist"
    sources = {}
    for field in dataclasses.fields(SdkSettings):
        env_key = settings_module.ENV_PREFIX + field.name.upper()
        if env_key in environ:
            sources[field.name] = f"env {env_key}"
        elif field.name in from_file:
            sources[field.name] = f"[sdk] in {path}"
    return sources, problem


# --- libraries -------------------------------------------------------------------------


def library_findings(libraries: Iterable[Library] = LIBRARIES) -> list[Finding]:
    section = "Frameworks and clients"
    findings = []
    requirers = _requirers()
    for module, distribution, instrumentation, extra, kind in libraries:
        if importlib.util.find_spec(module) is None:
            continue
        version = _version(distribution) or "?"
        subject = f"{distribution} {version}"
        if not instrumentation:
            findings.append(Finding(section, subject, f"{kind}; call its helper explicitly"))
            continue
        instrumented = _version(instrumentation)
        if instrumented:
            findings.append(
                Finding(
                    section,
                    subject,
                    f"{kind}; {instrumentation} {instrumented}: threadline.instrument() turns "
                    "it on",
                )
            )
            continue
        advice = f'pip install "threadline[{extra}]" (adds {instrumentation})'
        required_by = requirers.get(_canonical(distribution))
        if required_by:
            # There because another package needs it: the service may never call it.
            findings.append(
                Finding(
                    section,
                    subject,
                    f"{kind}; installed as a dependency of {', '.join(sorted(required_by))}, "
                    f"not traced; if your code uses it directly: {advice}",
                )
            )
        else:
            findings.append(
                Finding(
                    section,
                    subject,
                    f"{kind}; {instrumentation} is not installed, so it is not traced",
                    advice,
                    "warning",
                )
            )
    if not findings:
        findings.append(Finding(section, "none", "no framework or client Threadline knows"))
    return findings


_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirers() -> dict[str, set[str]]:
    """Installed distribution -> the installed distributions that always require it.

    Requirements that apply only with an extra (``; extra == "..."``) are left out: an
    extra may not have been chosen, and the question is what is certainly pulled in.
    """
    found: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        for requirement in dist.requires or ():
            spec, _, marker = requirement.partition(";")
            match = _NAME.match(spec.strip())
            if match is None or "extra" in marker:
                continue
            found.setdefault(_canonical(match.group()), set()).add(name)
    return found


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


# --- propagators -----------------------------------------------------------------------


def propagator_findings(loaded: SdkSettings | None, environ: dict[str, str]) -> list[Finding]:
    section = "Propagators (installed by configure())"
    allowed = loaded.baggage_allowed_hosts if loaded else SdkSettings().baggage_allowed_hosts
    findings = [
        Finding(section, "W3C Trace Context", "traceparent, tracestate: extract and inject"),
        Finding(
            section,
            "W3C Baggage",
            f"baggage: extract; inject only to hosts in baggage_allowed_hosts ({allowed})",
        ),
        Finding(section, "B3", "b3 / X-B3-*: extract only (for Zipkin-instrumented peers)"),
    ]
    otel = environ.get("OTEL_PROPAGATORS")
    if otel:
        findings.append(
            Finding(
                section,
                "OTEL_PROPAGATORS",
                f"{otel!r} is set but configure() installs the propagators above",
                "unset OTEL_PROPAGATORS to avoid confusion, or configure OpenTelemetry "
                "yourself before threadline.configure()",
                "warning",
            )
        )
    return findings


# --- endpoint --------------------------------------------------------------------------


def endpoint_findings(loaded: SdkSettings, send: bool) -> list[Finding]:
    from threadline.sdk.export.pipeline import transport_config
    from threadline.sdk.export.retry import outcome_of
    from threadline.sdk.export.transport import HttpTransport, TransportError

    section = "Endpoint"
    url = loaded.endpoint.rstrip("/") + conventions.TRACES_PATH
    if not send:
        return [Finding(section, url, "not checked (--no-send)")]
    config = transport_config(loaded)
    try:
        transport = HttpTransport(config)
        try:
            started = time.monotonic()
            answer = transport.post(_test_request(loaded))
            elapsed_ms = (time.monotonic() - started) * 1000
        finally:
            transport.close()
    except TransportError as exc:
        return [
            Finding(
                section, url, f"unreachable: {exc}", _unreachable_advice(loaded, exc), "problem"
            )
        ]
    except OSError as exc:  # TLS files that cannot be loaded
        return [
            Finding(
                section, url, f"TLS setup failed: {exc}", "check ca_file/client_cert", "problem"
            )
        ]
    outcome = outcome_of(answer.status)
    if outcome is Outcome.DELIVERED:
        return [
            Finding(
                section,
                url,
                f"accepted a test span '{DOCTOR_SPAN_NAME}' (HTTP {answer.status}, "
                f"{elapsed_ms:.0f} ms)",
            )
        ]
    detail = f"answered HTTP {answer.status}: {answer.body[:200]!r}"
    return [Finding(section, url, detail, _status_advice(answer.status, outcome), "problem")]


def _test_request(loaded: SdkSettings) -> bytes:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

    from threadline.sdk.export.encoder import SpanEncoder
    from threadline.sdk.export.pipeline import resource_attributes

    now = time.time_ns()
    context = SpanContext(
        int.from_bytes(os.urandom(16), "big") | 1,
        int.from_bytes(os.urandom(8), "big") | 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    resource = Resource.create({"service.name": loaded.service_name, **resource_attributes(loaded)})
    record = (
        context,
        None,
        DOCTOR_SPAN_NAME,
        SpanKind.INTERNAL,
        now,
        now,
        {"threadline.doctor": True},
        None,
        None,
        Status(),
        InstrumentationScope("threadline.doctor"),
        resource,
        None,
        None,
    )
    return SpanEncoder().encode_request([record])


def _unreachable_advice(loaded: SdkSettings, exc: Exception) -> str:
    text = str(exc)
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return (
            "the TLS handshake failed: set ca_file to the CA that signed the endpoint's "
            "certificate, and client_cert/client_key if it requires mutual TLS"
        )
    if loaded.endpoint.rstrip("/").endswith(":4318") or "Refused" in text:
        return (
            f"nothing answers at {loaded.endpoint}: start `threadline serve` (or your "
            "collector) there, or set THREADLINE_ENDPOINT to where it runs"
        )
    return f"check that {loaded.endpoint} is reachable from this host (DNS, firewall, proxy)"


def _status_advice(status: int, outcome: Outcome) -> str:
    if status in (401, 403):
        return (
            "the endpoint wants an ingest token: set THREADLINE_HEADERS="
            '"Authorization=Bearer%20<token>" (or OTEL_EXPORTER_OTLP_HEADERS)'
        )
    if status == 404:
        return "no OTLP receiver at this path: set endpoint to the base URL, without /v1/traces"
    if status == 415:
        return "the endpoint does not accept OTLP protobuf; point the SDK at an OTLP/HTTP port"
    if status in (429, 502, 503, 504):
        return "the endpoint is overloaded or starting; the SDK retries these automatically"
    return "the endpoint rejected the request; see its logs for the reason"


COMMANDS: list[click.Command] = [doctor]

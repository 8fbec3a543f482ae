"""Names and defaults that both halves agree on.

The SDK and the server never import each other; they meet only on the OTLP wire
format and on the attribute keys and endpoints below.
"""

from typing import Final

# Journey keys: carried as W3C baggage entries and stamped on spans under the
# same names (OpenTelemetry semantic conventions for session.id and user.id).
SESSION_ID: Final = "session.id"
USER_ID: Final = "user.id"
JOURNEY_ID: Final = "journey.id"
JOURNEY_KEYS: Final[tuple[str, ...]] = (SESSION_ID, USER_ID, JOURNEY_ID)
# Marks test traffic (probes, drills, synthetic monitors): a baggage entry and a span
# attribute whose value is SYNTHETIC_TRUE. Such a journey is always sampled, and the
# server keeps it out of RED, SLOs, the service map's traffic and the baselines unless
# asked; a ``journey.id`` alone is only a grouping key and marks nothing.
JOURNEY_SYNTHETIC: Final = "journey.synthetic"
SYNTHETIC_TRUE: Final = "true"
# Header an entry point reads to start a synthetic journey (value ``true``), for
# traffic sent by tools that do not speak baggage (curl, load generators, monitors).
SYNTHETIC_HEADER: Final = "X-Threadline-Synthetic"

# The span the SDK sends about its own exporter (exported, dropped, retried, queued
# spans). It is the SDK's telemetry, not user traffic: the server keeps it out of
# search, RED, the service map and journeys, and shows it on the service's page.
SDK_STATS_SPAN: Final = "threadline.sdk.stats"
# Attribute the server adds to a span whose start it moved back from the future (its
# start as sent); the store matches such a span when it is sent again by id alone.
CLAMPED_FROM: Final = "threadline.start_clamped_from_ns"
SDK_STATS_PREFIX: Final = "threadline.sdk."

SERVICE_NAME: Final = "service.name"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_DESTINATION: Final = "messaging.destination.name"
MESSAGING_OPERATION: Final = "messaging.operation.type"
MESSAGING_MESSAGE_ID: Final = "messaging.message.id"

# OTLP/HTTP: 4318 is the port an unconfigured OpenTelemetry SDK exports to.
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4318
DEFAULT_ENDPOINT: Final = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
TRACES_PATH: Final = "/v1/traces"
LOGS_PATH: Final = "/v1/logs"
# Where OTLP exporters post: answered in OTLP's shapes, open to ingest tokens only.
OTLP_PATHS: Final = frozenset({TRACES_PATH, LOGS_PATH})
# Prometheus scrapes it (text format or OpenMetrics).
METRICS_PATH: Final = "/metrics"
API_PREFIX: Final = "/api"

# Header (or cookie) from which an inbound request without baggage starts a journey.
DEFAULT_SESSION_HEADER: Final = "X-Session-Id"
DEFAULT_SESSION_COOKIE: Final = "session_id"

# Limits of the REST API's list parameters, checked by the server and by the command
# line before it asks. Most rows one list answers with: enough for any screen or script
# page, small enough that one request cannot make the server build a huge response.
MAX_LIMIT: Final = 1000
# Deepest a page may start by offset: deeper pages make the store sort and skip
# everything before them; a cursor (``next_cursor``) pages any depth at the same cost.
MAX_OFFSET: Final = 100_000

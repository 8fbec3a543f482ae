"""Query-string values turned into typed query values, or ``InvalidParameter``.

Every parameter arrives as text (or not at all); an empty value means "any", as
in ``?service=&status=error``. A value that cannot be used is an error naming
the parameter and saying what is allowed; it is never replaced by a default.
The web UI reads the same parameters and uses these functions too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Final, TypeVar, get_args

from threadline import conventions
from threadline.server.aggregates import Target
from threadline.server.analysis.attribute_signal import PER_PERSON_KEYS
from threadline.server.analysis.durations import parse_duration_ns, parse_time_ns
from threadline.server.analysis.tail_latency import Measure
from threadline.server.api import cursor
from threadline.server.errors import InvalidParameter
from threadline.server.log_batch import SEVERITIES
from threadline.server.model import StatusCode, SyntheticFilter, TraceOrder, TraceQuery
from threadline.server.storage.base import JourneyOrder
from threadline.server.windows import DEFAULT_WINDOW_NS, WindowRequest

DEFAULT_LIMIT: Final = 20
# Most rows one list answers with (shared with the command line).
MAX_LIMIT: Final = conventions.MAX_LIMIT
# Longest filter value accepted; service names, span names and ids are far shorter.
MAX_VALUE_CHARS: Final = 1024
# Most attribute filters in one search: each adds a scan of the span table, and no
# question a person asks needs more than a handful.
MAX_ATTRIBUTE_FILTERS: Final = 10
# Deepest a page may start by offset (shared with the command line).
MAX_OFFSET: Final = conventions.MAX_OFFSET
DEFAULT_PERCENTILE: Final = 90.0

_T = TypeVar("_T")

# OpenTelemetry log data model: severity numbers run 1 (TRACE) to 24 (FATAL4).
MAX_SEVERITY_NUMBER: Final = 24
_WHOLE_NUMBER: Final = re.compile(r"[0-9]{1,9}")
_STATUSES: Final = tuple(status.value for status in StatusCode)
# Each choice keyed by its name, so a lookup yields the typed value.
_JOURNEY_ORDERS: Final[dict[str, JourneyOrder]] = {o: o for o in get_args(JourneyOrder)}
_TRACE_ORDERS: Final[dict[str, TraceOrder]] = {o: o for o in get_args(TraceOrder)}
_SYNTHETIC: Final[dict[str, SyntheticFilter]] = {s: s for s in get_args(SyntheticFilter)}
_MEASURES: Final[dict[str, Measure]] = {m: m for m in get_args(Measure)}
_BOOLEANS: Final[dict[str, bool]] = {"true": True, "1": True, "false": False, "0": False}
_NUMBER: Final = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?")


def trace_query(
    *,
    service: str | None = None,
    operation: str | None = None,
    status: str | None = None,
    min_duration: str | None = None,
    max_duration: str | None = None,
    start: str | None = None,
    end: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    limit: str | None = None,
    journey_id: str | None = None,
    attr: Sequence[str] | None = None,
    order: str | None = None,
    offset: str | None = None,
    page_cursor: str | None = None,
    log_text: str | None = None,
    log_severity: str | None = None,
    log_service: str | None = None,
    synthetic: str | None = None,
) -> TraceQuery:
    """A ``TraceQuery`` from the query parameters of ``GET /api/traces``."""
    min_duration_ns = duration("min_duration", min_duration)
    max_duration_ns = duration("max_duration", max_duration)
    start_ns, end_ns = time("start", start), time("end", end)
    # Reversed bounds can match nothing: most likely the two values were swapped.
    _check_bounds("min_duration", min_duration_ns, "max_duration", max_duration_ns)
    _check_bounds("start", start_ns, "end", end_ns)
    trace_order = parse_trace_order(order)
    skip = parse_offset(offset)
    if skip and page_cursor:
        raise InvalidParameter("offset", "cannot be combined with cursor; use one or the other")
    return TraceQuery(
        service=text_filter("service", service),
        operation=text_filter("operation", operation),
        status=parse_status(status),
        min_duration_ns=min_duration_ns,
        max_duration_ns=max_duration_ns,
        start_ns=start_ns,
        end_ns=end_ns,
        session_id=text_filter("session_id", session_id),
        user_id=text_filter("user_id", user_id),
        limit=parse_limit(limit),
        journey_id=text_filter("journey_id", journey_id),
        attributes=attribute_filters(attr),
        order=trace_order,
        offset=skip,
        after=None if not page_cursor else cursor.decode(page_cursor, order=trace_order),
        log_text=text_filter("log_text", log_text),
        log_severity=severity("log_severity", log_severity),
        log_service=text_filter("log_service", log_service),
        synthetic=_choice("synthetic", synthetic, _SYNTHETIC, default="include"),
    )


def text_filter(name: str, value: str | None) -> str | None:
    """An exact-match filter value; ``None`` when absent or empty."""
    if not value:
        return None
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidParameter(name, f"longer than {MAX_VALUE_CHARS} characters")
    return value


def required(name: str, value: str | None) -> str:
    """A parameter that must be given and not empty."""
    given = text_filter(name, value)
    if given is None:
        raise InvalidParameter(name, "is required")
    return given


def severity(name: str, value: str | None) -> int | None:
    """A log severity name or number as the least severity number; None when absent."""
    if not value:
        return None
    text = value.strip().lower()
    if text in SEVERITIES:
        return SEVERITIES[text]
    if text.isdigit() and 1 <= int(text) <= MAX_SEVERITY_NUMBER:
        return int(text)
    names = ", ".join(sorted(set(SEVERITIES) - {"warning"}))
    raise InvalidParameter(
        name, f"{_shown(value)} is not one of {names} nor a number from 1 to {MAX_SEVERITY_NUMBER}"
    )


def parse_status(value: str | None) -> StatusCode | None:
    if not value:
        return None
    try:
        return StatusCode(value.strip().lower())
    except ValueError:
        raise InvalidParameter(
            "status", f"{_shown(value)} is not one of {', '.join(_STATUSES)}"
        ) from None


def duration(name: str, value: str | None) -> int | None:
    """Nanoseconds of a duration such as ``250ms``; ``None`` when absent or empty."""
    if not value:
        return None
    try:
        return parse_duration_ns(value)
    except ValueError as exc:
        raise InvalidParameter(name, str(exc)) from None


def time(name: str, value: str | None) -> int | None:
    """Unix epoch nanoseconds of an RFC 3339 time or Unix ms; ``None`` when absent."""
    if not value:
        return None
    try:
        return parse_time_ns(value)
    except ValueError as exc:
        raise InvalidParameter(name, str(exc)) from None


def parse_limit(value: str | None, *, default: int = DEFAULT_LIMIT) -> int:
    if not value:
        return default
    text = value.strip()
    if not _WHOLE_NUMBER.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidParameter(
            "limit", f"{_shown(value)} is not a whole number from 1 to {MAX_LIMIT}"
        )
    return int(text)


def parse_order(value: str | None) -> JourneyOrder:
    return _choice("order", value, _JOURNEY_ORDERS, default="recent")


def attribute_filters(values: Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """``key=value`` pairs (split at the first ``=``); empty values are ignored."""
    given = [value for value in values or () if value]
    if len(given) > MAX_ATTRIBUTE_FILTERS:
        raise InvalidParameter("attr", f"at most {MAX_ATTRIBUTE_FILTERS} attribute filters")
    pairs = []
    for value in given:
        key, equals, expected = value.partition("=")
        if not equals or not key:
            raise InvalidParameter(
                "attr", f"{_shown(value)} is not key=value (e.g. attr=http.route=/checkout)"
            )
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidParameter("attr", f"longer than {MAX_VALUE_CHARS} characters")
        pairs.append((key, expected))
    return tuple(pairs)


def journey_attribute(values: Sequence[str] | None) -> tuple[str, str] | None:
    """The one ``key=value`` that chooses journeys for a map or a funnel, or None.

    A key naming a person or a visit (a user or session id) is refused: maps and
    funnels are counts, and a filter on one person would make them that person's path.
    """
    pairs = attribute_filters(values)
    if not pairs:
        return None
    if len(pairs) > 1:
        raise InvalidParameter("attr", "maps and funnels take one attribute filter")
    (pair,) = pairs
    if pair[0] in PER_PERSON_KEYS:
        raise InvalidParameter(
            "attr", f"{pair[0]} names a person or a visit: maps and funnels show counts only"
        )
    return pair


def parse_trace_order(value: str | None) -> TraceOrder:
    return _choice("order", value, _TRACE_ORDERS, default="recent")


def parse_offset(value: str | None) -> int:
    if not value:
        return 0
    text = value.strip()
    if not _WHOLE_NUMBER.fullmatch(text) or int(text) > MAX_OFFSET:
        raise InvalidParameter(
            "offset", f"{_shown(value)} is not a whole number from 0 to {MAX_OFFSET}"
        )
    return int(text)


def parse_failed(value: str | None) -> bool | None:
    """``failed=true``/``false`` (or 1/0); ``None`` when absent or empty."""
    if not value:
        return None
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise InvalidParameter("failed", f"{_shown(value)} is not true or false") from None


def window_request(window: str | None, end: str | None) -> WindowRequest:
    """The window ``window`` long (default 1h) ending at ``end`` (default: now)."""
    length = duration("window", window)
    if length == 0:
        raise InvalidParameter("window", "must be longer than 0")
    return WindowRequest(
        length_ns=DEFAULT_WINDOW_NS if length is None else length, end_ns=time("end", end)
    )


def bucket(value: str | None) -> int | None:
    """The bucket size of a series; ``None`` when absent or empty.

    How many buckets the window may hold is ``QueryService.service_red``'s check:
    it counts them after aligning the window to the bucket size.
    """
    size = duration("bucket", value)
    if size == 0:
        raise InvalidParameter("bucket", "must be longer than 0")
    return size


def percentile(value: str | None) -> float:
    """A percentile strictly between 0 and 100, e.g. ``90`` or ``99.9``."""
    if not value:
        return DEFAULT_PERCENTILE
    text = value.strip()
    number = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not 0 < number < 100:
        raise InvalidParameter(
            "percentile", f"{_shown(value)} is not a number between 0 and 100 (e.g. 90, 99.9)"
        )
    return number


def measure(value: str | None) -> Measure:
    return _choice("measure", value, _MEASURES, default="critical_path")


def target(service: str | None, operation: str | None, *, required: bool) -> Target:
    """The requests a comparison is about; ``required`` makes ``service`` mandatory."""
    service_name = text_filter("service", service)
    operation_name = text_filter("operation", operation)
    if service_name is None and (required or operation_name is not None):
        raise InvalidParameter("service", "is required (the service whose requests to analyse)")
    return Target(service=service_name, operation=operation_name)


def _choice(name: str, value: str | None, choices: Mapping[str, _T], *, default: str) -> _T:
    """The choice ``value`` names (any case; ``default`` when absent or empty)."""
    text = (value or default).strip().lower()
    if text not in choices:
        raise InvalidParameter(name, f"{_shown(value or '')} is not one of {', '.join(choices)}")
    return choices[text]


def _check_bounds(low_name: str, low: int | None, high_name: str, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise InvalidParameter(low_name, f"is greater than {high_name}")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "…")

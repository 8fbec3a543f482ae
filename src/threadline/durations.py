"""Durations and points in time as people type them, turned into nanoseconds.

Durations follow Go's ``time.ParseDuration`` (the form Jaeger and Tempo accept):
a number with a unit, optionally several in a row — ``250ms``, ``1.5s``, ``2m``,
``500us``, ``1m30s``. A bare number is refused rather than guessed at: ``250``
could mean milliseconds to one reader and seconds to another.

Points in time are RFC 3339 (``2025-01-31T12:00:00Z``, any offset; a missing
offset means UTC) or Unix epoch milliseconds (``1738324800000``), the two forms
a URL or a shell pipeline is likely to carry.

Both functions raise ``ValueError`` with a message that says what is allowed.

Shared ground like :mod:`threadline.conventions`: the server reads query parameters
with it and the command line checks options with it; it imports nothing of either.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

NS_PER_UNIT: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
DURATION_FORMS: Final = (
    "a number with a unit ns, us, ms, s, m, h, d or w (e.g. 250ms, 1.5s, 2m, 1m30s, 7d)"
)
TIME_FORMS: Final = "an RFC 3339 time (e.g. 2025-01-31T12:00:00Z) or Unix epoch milliseconds"

# Times and durations are stored as signed 64-bit nanoseconds: Unix time from 1970
# to 2262-04-11, durations up to ~292 years. Larger values cannot match anything and
# would overflow a database parameter, so they are refused rather than wrapped.
MAX_NS: Final = 2**63 - 1

# Longest input worth parsing: no legitimate duration or timestamp is longer, and
# a cap keeps the regular expressions below from working on megabytes of junk.
MAX_INPUT_CHARS: Final = 64

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_UNIX_MS = re.compile(r"\d{1,16}")


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go-style duration such as ``250ms`` or ``1m30s``."""
    compact = text.strip()
    if not compact or len(compact) > MAX_INPUT_CHARS:
        raise ValueError(f"expected {DURATION_FORMS}")
    total = Decimal(0)
    position = 0
    while position < len(compact):
        match = _DURATION_PART.match(compact, position)
        if match is None:
            raise ValueError(f"{_shown(text)} is not a duration; expected {DURATION_FORMS}")
        number, unit = match.groups()
        total += Decimal(number) * NS_PER_UNIT[unit]
        position = match.end()
    if total > MAX_NS:
        raise ValueError(f"{_shown(text)} is longer than the longest duration stored (292 years)")
    return int(total)


def parse_time_ns(text: str) -> int:
    """Unix epoch nanoseconds of an RFC 3339 time or of Unix epoch milliseconds."""
    compact = text.strip()
    if not compact or len(compact) > MAX_INPUT_CHARS:
        raise ValueError(f"expected {TIME_FORMS}")
    if _UNIX_MS.fullmatch(compact):
        return _in_range(text, int(compact) * 1_000_000)
    try:
        # Python 3.11 reads RFC 3339 including "Z"; RFC 3339 also allows "t" and "z".
        moment = datetime.fromisoformat(compact.replace("t", "T").replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"{_shown(text)} is not a time; expected {TIME_FORMS}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _in_range(text, _epoch_ns(moment))


def format_time(ns: int) -> str:
    """ISO 8601 UTC with microseconds, e.g. ``2025-01-31T12:00:00.123456Z``."""
    seconds, remainder = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=remainder // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch_ns(moment: datetime) -> int:
    # Integer arithmetic: a float timestamp loses the last digits of nanoseconds.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _in_range(text: str, ns: int) -> int:
    if not 0 <= ns <= MAX_NS:
        raise ValueError(f"{_shown(text)} is outside the times stored (1970 to 2262-04-11)")
    return ns


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_INPUT_CHARS else text[:MAX_INPUT_CHARS] + "…")

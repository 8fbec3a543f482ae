"""Durations and points in time as people type them: see :mod:`threadline.durations`.

The grammar lives outside the server so that the command line checks a ``--window``
or ``--since`` with the same rules without importing the server.
"""

from threadline.durations import (
    DURATION_FORMS,
    MAX_INPUT_CHARS,
    MAX_NS,
    NS_PER_UNIT,
    TIME_FORMS,
    format_time,
    parse_duration_ns,
    parse_time_ns,
)

__all__ = [
    "DURATION_FORMS",
    "MAX_INPUT_CHARS",
    "MAX_NS",
    "NS_PER_UNIT",
    "TIME_FORMS",
    "format_time",
    "parse_duration_ns",
    "parse_time_ns",
]

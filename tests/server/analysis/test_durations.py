"""Durations and times as typed in a URL or a shell, read exactly."""

from __future__ import annotations

import pytest

from threadline.server.analysis.durations import format_time, parse_duration_ns, parse_time_ns


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
        ("2m", 120_000_000_000),
        ("500us", 500_000),
        ("500µs", 500_000),
        ("10ns", 10),
        ("1h", 3_600_000_000_000),
        ("1m30s", 90_000_000_000),
        (".5ms", 500_000),
        (" 3s ", 3_000_000_000),
    ],
)
def test_go_style_durations(text: str, nanoseconds: int) -> None:
    """Durations read as Jaeger and Go read them, to the nanosecond."""
    assert parse_duration_ns(text) == nanoseconds


@pytest.mark.parametrize(
    "text", ["", "250", "fast", "1.5", "-1s", "1 s", "1sec", "1e3ms", "9" * 100]
)
def test_bad_durations_say_what_is_allowed(text: str) -> None:
    """A duration without a known unit is refused with the allowed forms, not guessed at."""
    with pytest.raises(ValueError, match="unit"):
        parse_duration_ns(text)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("2023-11-14T22:13:20Z", 1_700_000_000_000_000_000),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000_500_000_000),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000_000_000),
        ("2023-11-14t22:13:20z", 1_700_000_000_000_000_000),
        ("2023-11-14T22:13:20", 1_700_000_000_000_000_000),
        ("1700000000000", 1_700_000_000_000_000_000),
        ("1700000000123", 1_700_000_000_123_000_000),
    ],
)
def test_rfc3339_and_unix_milliseconds(text: str, nanoseconds: int) -> None:
    """Times are RFC 3339 (any offset, UTC if none) or Unix epoch milliseconds."""
    assert parse_time_ns(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "yesterday", "2023-13-01T00:00:00Z", "17e11", "-5"])
def test_bad_times_say_what_is_allowed(text: str) -> None:
    """A time in neither form is refused with both forms named."""
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time_ns(text)


@pytest.mark.parametrize(
    "text",
    ["9999999999999999", "9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"],
)
def test_times_outside_what_is_stored_are_refused(text: str) -> None:
    """Times before 1970 or after 2262 (beyond 64-bit nanoseconds) are errors, not wrapped."""
    with pytest.raises(ValueError, match="outside the times stored"):
        parse_time_ns(text)


def test_durations_beyond_64_bit_nanoseconds_are_refused() -> None:
    """A duration too long to store is an error, not a silently wrapped number."""
    assert parse_duration_ns("2562047h") == 2562047 * 3_600_000_000_000
    with pytest.raises(ValueError, match="longest duration"):
        parse_duration_ns("99999999999h")


def test_format_time_is_iso_utc_to_the_microsecond() -> None:
    """The human form of a nanosecond time is ISO 8601 UTC, without float rounding."""
    assert format_time(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456Z"

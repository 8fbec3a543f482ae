"""The guard: Threadline's own failures are logged (rate-limited) and never reach the host."""

from __future__ import annotations

import logging

import pytest

from threadline.sdk import guard


def _fail(where: str) -> None:
    try:
        raise RuntimeError("hook bug")
    except RuntimeError:
        guard.report_internal_error(where)


def test_errors_are_swallowed_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook failing on every span produces one log line per interval, and the caller carries
    on."""
    guard.raise_internal_errors(False)
    with caplog.at_level(logging.ERROR, logger="threadline"):
        for _ in range(100):
            _fail("test hook A")
        _fail("test hook B")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "test hook A failed" in messages[0]
    assert caplog.records[0].exc_info is not None


def test_tests_can_make_errors_raise() -> None:
    """With re-raising on (as in Threadline's tests), the original exception surfaces."""
    guard.raise_internal_errors(True)
    with pytest.raises(RuntimeError, match="hook bug"):
        _fail("test hook C")

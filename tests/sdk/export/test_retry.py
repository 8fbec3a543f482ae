"""Retry policy: which answers are retried, how long to wait, Retry-After."""

from __future__ import annotations

import random

import pytest

from threadline.sdk.export.retry import (
    MAX_RETRY_AFTER_S,
    Outcome,
    RetryPolicy,
    outcome_of,
    parse_retry_after,
)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_throttling_and_gateway_errors_are_retried(status: int) -> None:
    """OTLP/HTTP spec, "Retryable Response Codes": 429, 502, 503, 504 are retryable."""
    assert outcome_of(status) is Outcome.RETRY


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
def test_other_errors_are_final(status: int) -> None:
    """OTLP/HTTP spec: other 4xx/5xx must not be retried; the batch is dropped."""
    assert outcome_of(status) is Outcome.REJECTED


def test_success_is_any_2xx() -> None:
    """A 200 (or other 2xx) delivers the batch."""
    assert outcome_of(200) is Outcome.DELIVERED
    assert outcome_of(202) is Outcome.DELIVERED


def test_retry_after_seconds_and_http_date() -> None:
    """RFC 9110 §10.2.3: Retry-After is delay-seconds or an HTTP-date."""
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("999999") == MAX_RETRY_AFTER_S


def test_backoff_is_full_jitter_under_a_doubling_cap() -> None:
    """Waits are uniform in [0, min(max, initial * 2^attempt)]."""
    policy = RetryPolicy(deadline_s=30, initial_backoff_s=1.0, max_backoff_s=8.0)
    rng = random.Random(7)
    for attempt, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        waits = [policy.backoff_s(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8  # spread over the range, not pinned at 0


def test_retry_after_replaces_the_backoff() -> None:
    """A server's Retry-After is honoured as the wait."""
    assert RetryPolicy().backoff_s(0, 2.5) == 2.5

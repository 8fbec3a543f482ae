"""The backoff between attempts: doubling, capped, jittered, stretched by Retry-After."""

from __future__ import annotations

import random

import pytest

from threadline.server.alerting.delivery.retry import RetryPolicy, retry_after_s, retryable


def test_waits_double_up_to_the_cap_and_are_jittered_within_half_of_it() -> None:
    """Attempt n waits between half and all of min(max, initial * 2^(n-1))."""
    policy = RetryPolicy(initial_s=1.0, max_s=8.0)
    rng = random.Random(3)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        waits = [policy.delay_s(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert max(waits) - min(waits) > ceiling / 4  # jittered, not fixed


def test_retry_after_stretches_a_wait_but_never_past_the_deadline() -> None:
    """A receiver's Retry-After wins when longer; the deadline bounds it."""
    policy = RetryPolicy(initial_s=1.0, max_s=8.0, deadline_s=60.0)
    rng = random.Random(3)
    assert policy.delay_s(1, rng, retry_after_s=30.0) == 30.0
    assert policy.delay_s(1, rng, retry_after_s=600.0) == 60.0
    assert policy.delay_s(1, rng, retry_after_s=0.1) <= 1.0
    assert retry_after_s("120") == 120.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_s("-3") is None


def test_which_answers_are_retried() -> None:
    """Passing troubles are retried; a refusal of the body is final."""
    assert all(retryable(code) for code in (408, 429, 500, 502, 503, 504))
    assert not any(retryable(code) for code in (400, 401, 403, 404, 413, 422))


def test_bad_bounds_are_refused() -> None:
    """A policy that cannot work is an error, not a silent default."""
    with pytest.raises(ValueError, match="initial_s"):
        RetryPolicy(initial_s=10.0, max_s=1.0)
    with pytest.raises(ValueError, match="deadline_s"):
        RetryPolicy(deadline_s=0)

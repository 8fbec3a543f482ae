"""The traces-per-second limit of a rule, held over time (clock moved by hand)."""

from __future__ import annotations

import pytest

from threadline.sdk.sampling.token_bucket import TokenBucket

from .clock import ManualClock


def _taken(bucket: TokenBucket, attempts: int) -> int:
    return sum(bucket.take() for _ in range(attempts))


def test_a_burst_gets_one_seconds_worth() -> None:
    """Ten requests at once under a limit of 3/s: three pass."""
    clock = ManualClock()
    assert _taken(TokenBucket(3, clock), 10) == 3


def test_the_limit_holds_over_a_long_stretch() -> None:
    """Hammered for a minute in 10 ms steps, a 5/s bucket passes 5 a second (plus the burst)."""
    clock = ManualClock()
    bucket = TokenBucket(5, clock)
    passed = 0
    for _ in range(6000):
        clock.advance(0.01)
        passed += bucket.take()
    # The initial burst plus 5/s refill; never more, and at most a token short.
    assert 5 * 60 <= passed <= 5 + 5 * 60


def test_fractional_rates_refill_slowly() -> None:
    """A 0.5/s limit allows one trace, then the next only two seconds later."""
    clock = ManualClock()
    bucket = TokenBucket(0.5, clock)
    assert bucket.take()
    clock.advance(1.0)
    assert not bucket.take()
    clock.advance(1.0)
    assert bucket.take()


def test_an_idle_bucket_does_not_save_up_beyond_its_burst() -> None:
    """After an hour of silence a 2/s bucket still allows only two at once."""
    clock = ManualClock()
    bucket = TokenBucket(2, clock)
    clock.advance(3600)
    assert _taken(bucket, 10) == 2


def test_a_clock_stepping_back_refills_nothing() -> None:
    """Time going backwards never creates tokens."""
    clock = ManualClock()
    bucket = TokenBucket(1, clock)
    assert bucket.take()
    clock.advance(-10)
    assert not bucket.take()


def test_a_rate_must_be_positive() -> None:
    """A zero rate is a mistake, not a silent 'drop everything'."""
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)

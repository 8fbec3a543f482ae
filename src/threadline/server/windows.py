"""Time windows as asked for ("the last hour, in 1-minute buckets") and as queried.

A request names a window by its length and, optionally, its end (default: now).
Bucketed series are aligned to multiples of the bucket since the epoch, so two
dashboards asking a minute apart get the same bucket edges; the window is widened
to whole buckets for that. The clock is passed in: nothing here reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from threadline.server.aggregates import TimeWindow

NS_PER_S: Final = 1_000_000_000
DEFAULT_WINDOW_NS: Final = 3600 * NS_PER_S
# Most buckets one series holds: a day at one-minute resolution. More points than a
# chart has pixels only costs the server and the network.
MAX_BUCKETS: Final = 1440
# Without an explicit bucket, a series gets the smallest of these sizes that keeps
# it to about this many points: enough for a readable sparkline or chart.
TARGET_BUCKETS: Final = 60
BUCKET_SIZES_NS: Final[tuple[int, ...]] = tuple(
    seconds * NS_PER_S
    for seconds in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 86400)
)


@dataclass(frozen=True, slots=True)
class WindowRequest:
    """A window as asked for: ``length_ns`` ending at ``end_ns`` (``None``: now)."""

    length_ns: int = DEFAULT_WINDOW_NS
    end_ns: int | None = None

    def __post_init__(self) -> None:
        if self.length_ns < 1:
            raise ValueError(f"a window must be longer than 0 ns, got {self.length_ns}")

    def resolve(self, now_ns: int) -> TimeWindow:
        end = self.end_ns if self.end_ns is not None else now_ns
        end = max(end, 1)
        return TimeWindow(start_ns=max(0, end - self.length_ns), end_ns=end)


def default_bucket_ns(length_ns: int) -> int:
    """The smallest standard bucket giving at most ``TARGET_BUCKETS`` buckets."""
    for size in BUCKET_SIZES_NS:
        if -(-length_ns // size) <= TARGET_BUCKETS:
            return size
    return BUCKET_SIZES_NS[-1]


def aligned(window: TimeWindow, bucket_ns: int) -> TimeWindow:
    """``window`` widened to whole buckets aligned on multiples of ``bucket_ns``."""
    if bucket_ns < 1:
        raise ValueError(f"bucket_ns must be at least 1, got {bucket_ns}")
    start = window.start_ns // bucket_ns * bucket_ns
    end = -(-window.end_ns // bucket_ns) * bucket_ns
    return TimeWindow(start_ns=start, end_ns=end)


def bucket_count(window: TimeWindow, bucket_ns: int) -> int:
    return -(-window.duration_ns // bucket_ns)

"""Time units in nanoseconds, as spans carry them, and a start for a test's hour."""

from __future__ import annotations

from typing import Final

S: Final = 1_000_000_000
MS: Final = 1_000_000
MINUTE: Final = 60 * S
# A whole minute, so rollup minutes and the test's minutes line up.
T0: Final = 1_700_000_040 * S

"""The ``traceparent`` field of W3C Trace Context Level 2: parse what arrives, format what leaves.

https://www.w3.org/TR/trace-context-2/#traceparent-header

What differs from the stock OpenTelemetry propagator:

* more than one ``traceparent`` field line is invalid. ``traceparent`` is not a list
  field, so repeated lines (or the comma-joined line a server makes of them, RFC 9110
  §5.3) do not match the §3.2.2 grammar; the W3C conformance suite
  (``test_traceparent_duplicated``) expects a new trace. The stock propagator reads the
  first line and ignores the others;
* trace-flags keep exactly the flags Level 2 defines, ``sampled`` (0x01) and
  ``random-trace-id`` (0x02); other bits are reserved and "Vendors MUST set those to
  zero" (§3.2.2.5), so they are cleared on the way in and on the way out.

Everything else follows §3.2.2 (lowercase hex only, all-zero ids invalid, version
``ff`` invalid) and §3.2.4 (a higher version is read by its first four fields when the
value is at least 55 characters and a ``-`` follows the flags).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

SAMPLED: Final = 0x01
RANDOM_TRACE_ID: Final = 0x02
# The only trace-flags Level 2 defines; every other bit is reserved (§3.2.2.5).
KNOWN_FLAGS: Final = SAMPLED | RANDOM_TRACE_ID

# version "-" trace-id "-" parent-id "-" trace-flags, then (for versions above 00 only)
# "-" and fields this version knows nothing about (§3.2.4).
_TRACEPARENT: Final = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL
)
# RFC 9110 §5.5: whitespace around a field value is not part of it.
_OWS: Final = " \t"
_INVALID_VERSION: Final = "ff"
_SUPPORTED_VERSION: Final = "00"


@dataclass(frozen=True, slots=True)
class Traceparent:
    """The parts of a valid ``traceparent`` this version of the spec understands."""

    trace_id: int
    parent_id: int
    trace_flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.trace_flags & SAMPLED)

    @property
    def random_trace_id(self) -> bool:
        return bool(self.trace_flags & RANDOM_TRACE_ID)


def parse_traceparent(field_lines: Sequence[str]) -> Traceparent | None:
    """The ``traceparent`` carried by ``field_lines``, or None when absent or invalid."""
    if len(field_lines) != 1:
        return None  # absent, or repeated: not a valid single value
    match = _TRACEPARENT.fullmatch(field_lines[0].strip(_OWS))
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == _INVALID_VERSION:
        return None
    if version == _SUPPORTED_VERSION and rest is not None:
        return None  # version 00 is exactly 55 characters
    trace_id_value = int(trace_id, 16)
    parent_id_value = int(parent_id, 16)
    if trace_id_value == 0 or parent_id_value == 0:
        return None
    return Traceparent(trace_id_value, parent_id_value, int(flags, 16) & KNOWN_FLAGS)


def format_traceparent(trace_id: int, parent_id: int, trace_flags: int) -> str:
    """A version-00 ``traceparent`` value, with reserved flag bits cleared."""
    return f"00-{trace_id:032x}-{parent_id:016x}-{trace_flags & KNOWN_FLAGS:02x}"

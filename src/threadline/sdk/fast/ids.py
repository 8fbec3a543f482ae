"""Trace and span ids for the fast pipeline: random bits from the process-wide generator.

The same source OpenTelemetry's ``RandomIdGenerator`` uses (``random.getrandbits``),
called directly rather than through a generator object. The module-level generator
is the one CPython reseeds in a forked child, so workers forked from one parent never
repeat each other's ids. A zero id is invalid in W3C Trace Context: drawn again.
"""

from __future__ import annotations

import random
from typing import Final

_bits: Final = random.getrandbits


def new_trace_id() -> int:
    trace_id = _bits(128)
    while not trace_id:
        trace_id = _bits(128)
    return trace_id


def new_span_id() -> int:
    span_id = _bits(64)
    while not span_id:
        span_id = _bits(64)
    return span_id

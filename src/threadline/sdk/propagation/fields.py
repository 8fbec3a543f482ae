"""Reading one header field's values from a carrier through an OpenTelemetry ``Getter``.

A carrier may hold a field once, several times (HTTP allows repeated field lines), or
as one comma-joined line (WSGI joins repeats with ", "). Getters return a list, but
hand-written ones sometimes return a bare string; both are read here the same way so
each propagator sees a plain list of field-line values. Anything else a carrier may
hold (bytes, a number, an object) is no text, so it is read as no field at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from opentelemetry.propagators.textmap import Getter

CarrierT = TypeVar("CarrierT")


def field_values(getter: Getter[CarrierT], carrier: CarrierT, name: str) -> Sequence[str]:
    """The field lines the carrier holds for ``name``, in order; empty when it holds none."""
    values = getter.get(carrier, name)
    if not values:
        return ()
    if isinstance(values, str):
        return (values,)
    if not isinstance(values, list | tuple):
        return ()
    if len(values) == 1 and isinstance(values[0], str):
        return values  # the common case: one field line
    return [value for value in values if isinstance(value, str)]

"""SQL helpers of the ClickHouse store: bound parameters and the span columns read back.

Every value reaches ClickHouse as a typed server-side parameter (``{p0:String}``),
never as text pasted into a statement; ``Bound`` hands out the placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from threadline.conventions import SDK_STATS_SPAN
from threadline.server.batch import COLUMNS, records_from_rows
from threadline.server.model import SpanRecord

ERROR: Final = "error"
# Spans of the services' own work, not the SDK's telemetry about itself.
USER_TRAFFIC: Final = f"name != '{SDK_STATS_SPAN}'"
NO_PARENT: Final = "coalesce(parent_span_id, '') = ''"


# The span columns in ``COLUMNS`` order. The attribute maps come back as maps and
# are turned into JSON text here (``spans_from_rows``): building the text in SQL, per
# row, took ~4x the time of reading a trace's granules.
SPAN_COLUMNS: Final = ", ".join(COLUMNS)
_MAP_COLUMNS: Final = tuple(
    i for i, name in enumerate(COLUMNS) if name in ("attributes", "resource")
)


def spans_from_rows(rows: Iterable[Sequence[Any]]) -> list[SpanRecord]:
    """The spans of one read with ``SPAN_COLUMNS``: each map of JSON-text values back to
    JSON text, each distinct document then parsed once (``records_from_rows``)."""
    return records_from_rows(_with_json_maps(row) for row in rows)


def _with_json_maps(row: Sequence[Any]) -> list[Any]:
    values = list(row)
    for index in _MAP_COLUMNS:
        values[index] = map_as_json(values[index])
    return values


def map_as_json(values: Mapping[str, str]) -> str:
    """``{key: JSON text}`` as the JSON object text it was written as."""
    return (
        "{"
        + ",".join(
            f"{json.dumps(key, ensure_ascii=False)}:{value}" for key, value in values.items()
        )
        + "}"
    )


def map_value_is(column: str, key: str, value: str, bound: Bound) -> str:
    """The map holds ``key`` with ``value``, compared as text: a string value is stored
    as JSON text (``"GET"``) and compared parsed, a number or a boolean as itself (``200``).

    Parsed, because the stored text is ClickHouse's own writing of the value (U+2028
    becomes ``\\u2028``), which no encoding of ``value`` outside ClickHouse matches
    for every character (and ``toJSONString`` writes ``/`` as ``\\/``, unlike it).
    """
    k, v = bound.add(key, "String"), bound.add(value, "String")
    stored = f"{column}[{k}]"
    return f"(mapContains({column}, {k}) AND ({stored} = {v} OR JSONExtractString({stored}) = {v}))"


@dataclass(slots=True)
class Bound:
    """Parameters of one statement; ``add`` returns the placeholder of a new one."""

    params: dict[str, object] = field(default_factory=dict)

    def add(self, value: object, type_name: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{type_name}}}"


def where(conditions: list[str], keyword: str = "WHERE") -> str:
    return f" {keyword} " + " AND ".join(conditions) if conditions else ""


def checked_limit(limit: int, name: str = "limit") -> int:
    if limit < 1:
        raise ValueError(f"{name} must be at least 1, got {limit}")
    return limit

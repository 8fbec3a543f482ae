"""SLO definitions: the one model and parser of the ``[[slo]]`` tables and ``/api/slos``.

A document is plain data (JSON over ``/api/slos``, or ``[[slo]]`` tables in
``threadline.toml``, with the same keys)::

    {"slos": [
      {"name": "checkout-errors", "service": "shop", "operation": "POST /checkout",
       "objective": 0.99, "window": "30d", "indicator": "errors"},
      {"name": "checkout-fast", "service": "shop", "operation": "POST /checkout",
       "objective": 0.95, "window": "30d", "indicator": "latency", "threshold": "300ms"},
      {"name": "checkout-journeys", "service": "shop", "operation": "POST /checkout",
       "objective": 0.98, "window": "7d", "indicator": "journey"},
      {"name": "pay-conversion", "service": "shop", "operation": "POST /checkout",
       "reaches": "POST /pay", "objective": 0.9, "window": "7d", "indicator": "journey"},
      {"name": "payments-calls", "service": "checkout", "callee": "payments",
       "objective": 0.999, "window": "30d", "indicator": "edge", "threshold": "200ms",
       "max_retry_share": 0.2}
    ]}

Indicators (what a good event is):

- ``errors``: an entry span (a request) of ``service`` (and ``operation``) that did
  not fail;
- ``latency``: a request that took at most ``threshold``;
- ``journey``: a journey (session) touching ``service`` (``operation``) with no
  failed span. With ``reaches`` (an operation, in any service) it is a funnel step:
  a journey that took ``service`` ``operation`` (the step before) is good when a later
  trace of its session takes ``reaches``, so a drop in conversion burns the budget;
- ``edge``: a call from ``service`` to ``callee`` that did not fail (and, with a
  ``threshold``, took at most that long). ``max_retry_share`` (edges only) also
  alerts when more than that share of the edge's calls are retries.

``include_synthetic`` (default false) counts synthetic and test journeys (spans
carrying a ``journey.id``), which are otherwise left out; the SDK's own telemetry is
never counted. ``min_events`` overrides the server's low-traffic guard for one SLO.

Parsing rejects anything it does not understand with an :class:`SloError` whose
``field`` is the path of the bad value (``slos[0].objective``), so the API answers
400 naming it. This module imports neither half.
"""

from __future__ import annotations

import enum
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from threadline.durations import parse_duration_ns
from threadline.etags import content_etag
from threadline.invalid_document import InvalidDocument
from threadline.settings import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE

MAX_SLOS: Final = 200
MAX_TEXT_LENGTH: Final = 200
# An SLO name is part of URLs (``/api/slos/<name>``, the page ``/slos/<name>``) and
# alert labels.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
HOUR_NS: Final = 3600 * 1_000_000_000
# The shortest window worth a budget is the longest burn window alerts read (3 days
# would be the workbook's choice; an hour is allowed for trials). 90 days bounds the
# rollup read of the budget and matches common SLO periods.
MIN_WINDOW_NS: Final = HOUR_NS
MAX_WINDOW_NS: Final = 90 * 24 * HOUR_NS

_KEYS: Final = frozenset(
    {
        "name",
        "indicator",
        "service",
        "operation",
        "reaches",
        "callee",
        "objective",
        "window",
        "threshold",
        "include_synthetic",
        "min_events",
        "max_retry_share",
        "description",
    }
)
_DOCUMENT_KEYS: Final = frozenset({"slos"})


class SloError(InvalidDocument):
    """An SLO document is invalid."""


class Indicator(enum.StrEnum):
    """What an SLO counts as its events."""

    ERRORS = "errors"
    LATENCY = "latency"
    JOURNEY = "journey"
    EDGE = "edge"


@dataclass(frozen=True, slots=True)
class Slo:
    """One SLO: ``objective`` of the indicator's events are good over a rolling ``window``."""

    name: str
    indicator: Indicator
    service: str
    objective: float
    window: str
    window_ns: int
    operation: str | None = None
    reaches: str | None = None
    callee: str | None = None
    threshold: str | None = None
    threshold_ns: int | None = None
    include_synthetic: bool = False
    min_events: int | None = None
    max_retry_share: float | None = None
    description: str = ""

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad (1 − objective)."""
        return 1.0 - self.objective

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name,
            "indicator": self.indicator.value,
            "service": self.service,
            "objective": self.objective,
            "window": self.window,
        }
        optional: dict[str, Any] = {
            "operation": self.operation,
            "reaches": self.reaches,
            "callee": self.callee,
            "threshold": self.threshold,
            "min_events": self.min_events,
            "max_retry_share": self.max_retry_share,
        }
        document.update({key: value for key, value in optional.items() if value is not None})
        if self.include_synthetic:
            document["include_synthetic"] = True
        if self.description:
            document["description"] = self.description
        return document


@dataclass(frozen=True, slots=True)
class SloDocument:
    """Every SLO, in the order given; names are unique."""

    slos: tuple[Slo, ...] = ()

    def get(self, name: str) -> Slo | None:
        return next((slo for slo in self.slos if slo.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"slos": [slo.to_json() for slo in self.slos]}

    def etag(self) -> str:
        """A strong validator of the document's content (same SLOs, same tag)."""
        return content_etag(self.to_json())


def parse(document: object) -> SloDocument:
    """Validate an SLO document (JSON or TOML data) into :class:`SloDocument`."""
    top = _table(document, "body")
    for key in top:
        if key not in _DOCUMENT_KEYS:
            raise SloError(str(key), 'unknown key; a document is {"slos": [...]}')
    raw = top.get("slos", [])
    if not isinstance(raw, list):
        raise SloError("slos", "must be a list of SLOs")
    if len(raw) > MAX_SLOS:
        raise SloError("slos", f"at most {MAX_SLOS} SLOs are allowed, got {len(raw)}")
    slos = tuple(parse_slo(value, f"slos[{i}]") for i, value in enumerate(raw))
    seen: set[str] = set()
    for i, slo in enumerate(slos):
        if slo.name in seen:
            raise SloError(f"slos[{i}].name", f"{slo.name!r} is used by an earlier SLO")
        seen.add(slo.name)
    return SloDocument(slos)


def parse_json(text: str | bytes) -> SloDocument:
    """Parse a JSON SLO document."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SloError("body", f"is not valid JSON: {exc}") from exc
    return parse(document)


def parse_slo(value: object, where: str) -> Slo:
    """One SLO table; ``where`` prefixes the field named in errors."""
    table = _table(value, where)
    for key in table:
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise SloError(f"{where}.{key}", f"unknown key; known keys: {known}")
    name = _text(table.get("name"), f"{where}.name")
    if not NAME_PATTERN.fullmatch(name):
        raise SloError(
            f"{where}.name",
            "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    try:
        indicator = Indicator(str(table.get("indicator")))
    except ValueError:
        allowed = ", ".join(i.value for i in Indicator)
        raise SloError(
            f"{where}.indicator", f"must be one of {allowed}, got {table.get('indicator')!r}"
        ) from None
    objective = _number(table.get("objective"), f"{where}.objective")
    if not 0.0 < objective < 1.0:
        raise SloError(
            f"{where}.objective", f"must be between 0 and 1 (exclusive), got {objective}"
        )
    window = _text(table.get("window"), f"{where}.window")
    window_ns = _duration(window, f"{where}.window")
    if not MIN_WINDOW_NS <= window_ns <= MAX_WINDOW_NS:
        raise SloError(f"{where}.window", "must be between 1h and 90d")
    threshold = _optional_text(table.get("threshold"), f"{where}.threshold")
    threshold_ns = None if threshold is None else _duration(threshold, f"{where}.threshold")
    if threshold_ns is not None and threshold_ns <= 0:
        raise SloError(f"{where}.threshold", "must be longer than 0")
    callee = _optional_text(table.get("callee"), f"{where}.callee")
    _check_indicator_keys(indicator, table, where)
    return Slo(
        name=name,
        indicator=indicator,
        service=_text(table.get("service"), f"{where}.service"),
        objective=objective,
        window=window,
        window_ns=window_ns,
        operation=_optional_text(table.get("operation"), f"{where}.operation"),
        reaches=_optional_text(table.get("reaches"), f"{where}.reaches"),
        callee=callee,
        threshold=threshold,
        threshold_ns=threshold_ns,
        include_synthetic=_flag(table.get("include_synthetic", False), where),
        min_events=_min_events(table.get("min_events"), f"{where}.min_events"),
        max_retry_share=_share(table.get("max_retry_share"), f"{where}.max_retry_share"),
        description=_optional_text(table.get("description"), f"{where}.description") or "",
    )


def _check_indicator_keys(indicator: Indicator, table: Mapping[str, Any], where: str) -> None:
    """Keys one indicator needs, and keys that mean nothing for it."""
    if indicator is Indicator.LATENCY and table.get("threshold") is None:
        raise SloError(f"{where}.threshold", 'a latency SLO needs a threshold, e.g. "300ms"')
    if indicator in (Indicator.ERRORS, Indicator.JOURNEY) and "threshold" in table:
        raise SloError(f"{where}.threshold", f"means nothing for the {indicator.value} indicator")
    if "reaches" in table:
        if indicator is not Indicator.JOURNEY:
            raise SloError(
                f"{where}.reaches",
                f"only a journey SLO follows a funnel step, not an {indicator.value} SLO",
            )
        if table.get("operation") is None:
            raise SloError(
                f"{where}.operation", "a funnel step SLO needs the step before (an operation)"
            )
    if indicator is Indicator.EDGE:
        if table.get("callee") is None:
            raise SloError(f"{where}.callee", "an edge SLO needs the called service")
        if "operation" in table:
            raise SloError(f"{where}.operation", "an edge SLO counts every call of the pair")
    elif "callee" in table:
        raise SloError(f"{where}.callee", "only an edge SLO has a callee")
    if indicator is not Indicator.EDGE and "max_retry_share" in table:
        raise SloError(f"{where}.max_retry_share", "only an edge SLO has a retry share")


def load_toml(path: Path) -> SloDocument | None:
    """The ``[[slo]]`` tables of a ``threadline.toml``; None when it has none."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise SloError(str(path), f"is not valid TOML: {exc}") from exc
    if "slo" not in document:
        return None
    try:
        return parse({"slos": document["slo"]})
    except SloError as exc:
        field = exc.field.replace("slos[", "slo[", 1)
        raise SloError(f"[[slo]] {field} in {path}", exc.problem) from exc


def load_file(path: Path) -> SloDocument:
    """A document from a ``.json`` file, or the ``[[slo]]`` tables of a ``.toml`` one."""
    if path.suffix == ".toml":
        return load_toml(path) or SloDocument()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SloError(str(path), f"cannot be read: {exc}") from exc
    try:
        return parse_json(text)
    except SloError as exc:
        raise SloError(f"{exc.field} in {path}", exc.problem) from exc


def configured_slos(environ: Mapping[str, str] | None = None) -> SloDocument:
    """The ``[[slo]]`` tables of ``threadline.toml``, found as the settings loader finds it."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(CONFIG_FILE_ENV)
    return load_toml(Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)) or SloDocument()


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SloError(where, "must be an object (a table)")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SloError(where, f"must be a number, got {value!r}")
    return float(value)


def _text(value: object, where: str) -> str:
    if value is None:
        raise SloError(where, "is required")
    if not isinstance(value, str):
        raise SloError(where, f"must be a string, got {value!r}")
    if not value:
        raise SloError(where, "must not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise SloError(where, f"must be at most {MAX_TEXT_LENGTH} characters")
    return value


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _duration(text: str, where: str) -> int:
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise SloError(where, str(exc)) from None


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SloError(f"{where}.include_synthetic", f"must be true or false, got {value!r}")
    return value


def _min_events(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SloError(where, f"must be a whole number of at least 0, got {value!r}")
    return value


def _share(value: object, where: str) -> float | None:
    if value is None:
        return None
    share = _number(value, where)
    if not 0.0 < share < 1.0:
        raise SloError(where, f"must be between 0 and 1 (exclusive), got {share}")
    return share

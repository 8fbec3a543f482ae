"""Sampling rules: the one model, parser and matcher both halves share.

A rule document is plain data (JSON over ``/api/sampling``, or the ``[sampling]``
table of ``threadline.toml``)::

    {
      "rules": [                                   first match wins
        {"name": "pay", "service": "checkout", "route": "/api/pay*", "method": "POST",
         "attributes": {"tenant": "acme"}, "probability": 1.0, "max_per_second": 5,
         "by": "journey"}
      ],
      "default": {"probability": 0.1},             when no rule matches
      "tail": {                                    server-side tail sampling
        "keep": [{"service": "payments"}],         traces with a matching span are kept
        "latency_ms": {"GET /checkout": 800}       per-operation slow thresholds
      }
    }

``service``, ``route`` and attribute values are ``fnmatch`` patterns (``*``, ``?``,
``[...]``); ``route`` is compared with the span name, the span name without its
leading HTTP method, and ``http.route``. ``method`` is compared with
``http.request.method`` (or the span name's leading method). ``by`` is ``trace`` (the
trace id decides, so every service agrees) or ``journey`` (the ``session.id`` decides,
so a user's whole journey is kept or dropped together).

Parsing rejects anything it does not understand with a :class:`RuleError` whose
``field`` is the path of the bad value (``rules[0].probability``), so the API can
answer 400 naming it. This module imports neither half.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final

from threadline import conventions
from threadline.etags import content_etag
from threadline.invalid_document import InvalidDocument
from threadline.settings import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE

HTTP_REQUEST_METHOD: Final = "http.request.method"
# Instrumentations on the old HTTP conventions still set ``http.method``.
LEGACY_HTTP_METHOD: Final = "http.method"

# W3C Trace Context Level 2: the rightmost 7 bytes (56 bits) of a trace id are random,
# so every service comparing them with the same bound reaches the same decision.
RANDOM_BITS: Final = 56
RANDOM_MASK: Final = (1 << RANDOM_BITS) - 1

# Bounds that keep a document small enough to poll often and match quickly.
MAX_RULES: Final = 200
MAX_NAME_LENGTH: Final = 200

_RULE_KEYS: Final = frozenset(
    {
        "name",
        "environment",
        "service",
        "route",
        "method",
        "attributes",
        "probability",
        "max_per_second",
        "by",
    }
)
_DEFAULT_KEYS: Final = frozenset({"probability", "max_per_second", "by"})
_MATCH_KEYS: Final = frozenset({"service", "route", "method", "attributes"})
_TAIL_KEYS: Final = frozenset({"keep", "latency_ms"})
_DOCUMENT_KEYS: Final = frozenset({"rules", "default", "tail"})


class RuleError(InvalidDocument):
    """A rule document is invalid."""


class SampleBy(enum.StrEnum):
    """What a rule's probability is applied to."""

    TRACE = "trace"
    JOURNEY = "journey"


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions on a span; an unset condition matches anything."""

    service: str | None = None
    route: str | None = None
    method: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    # Head rules only: the SDK's `environment` setting (deployment.environment.name),
    # decided once when rules are installed, never per span.
    environment: str | None = None

    def matches(self, service: str, span_name: str, attributes: Mapping[str, object]) -> bool:
        """Whether a span of ``service`` named ``span_name`` with ``attributes`` matches."""
        if self.service is not None and not fnmatchcase(service, self.service):
            return False
        if self.route is not None and not _route_matches(self.route, span_name, attributes):
            return False
        if self.method is not None and _method_of(span_name, attributes) != self.method:
            return False
        for key, pattern in self.attributes:
            value = attributes.get(key)
            if value is None or not fnmatchcase(str(value), pattern):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.environment is not None:
            document["environment"] = self.environment
        if self.service is not None:
            document["service"] = self.service
        if self.route is not None:
            document["route"] = self.route
        if self.method is not None:
            document["method"] = self.method
        if self.attributes:
            document["attributes"] = dict(self.attributes)
        return document


@dataclass(frozen=True, slots=True)
class HeadRule:
    """Sample matching root spans with ``probability``, at most ``max_per_second`` a second."""

    match: Match = Match()
    probability: float = 1.0
    max_per_second: float | None = None
    by: SampleBy = SampleBy.TRACE
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name} if self.name else {}
        document.update(self.match.to_json())
        document["probability"] = self.probability
        if self.max_per_second is not None:
            document["max_per_second"] = self.max_per_second
        document["by"] = self.by.value
        return document


@dataclass(frozen=True, slots=True)
class TailPolicy:
    """What the server keeps besides errors, slow traces and its probabilistic share."""

    keep: tuple[Match, ...] = ()
    latency_ms: tuple[tuple[str, float], ...] = ()

    def threshold_ms(self, operation: str, default_ms: float) -> float:
        """The slow threshold of ``operation`` (a span name pattern), else ``default_ms``."""
        for pattern, threshold in self.latency_ms:
            if fnmatchcase(operation, pattern):
                return threshold
        return default_ms


@dataclass(frozen=True, slots=True)
class SamplingRules:
    """A whole rule document: head rules in order, the default rule, the tail policy."""

    rules: tuple[HeadRule, ...] = ()
    default: HeadRule = field(default_factory=lambda: HeadRule(name="default"))
    tail: TailPolicy = TailPolicy()

    def for_service(self, service: str, environment: str = "") -> SamplingRules:
        """The rules that can match spans of ``service`` in ``environment`` (decided once)."""
        kept = tuple(
            r
            for r in self.rules
            if (r.match.service is None or fnmatchcase(service, r.match.service))
            and (r.match.environment is None or fnmatchcase(environment, r.match.environment))
        )
        return SamplingRules(kept, self.default, self.tail)

    def first_match(
        self, service: str, span_name: str, attributes: Mapping[str, object]
    ) -> HeadRule:
        """The first rule matching the span, else the default rule."""
        for rule in self.rules:
            if rule.match.matches(service, span_name, attributes):
                return rule
        return self.default

    def to_json(self) -> dict[str, Any]:
        tail: dict[str, Any] = {}
        if self.tail.keep:
            tail["keep"] = [m.to_json() for m in self.tail.keep]
        if self.tail.latency_ms:
            tail["latency_ms"] = dict(self.tail.latency_ms)
        default = self.default.to_json()
        default.pop("name", None)
        return {"rules": [r.to_json() for r in self.rules], "default": default, "tail": tail}

    def etag(self) -> str:
        """A strong validator of the document's content (same rules, same tag)."""
        return content_etag(self.to_json())


def sampled_by_ratio(random_value: int, probability: float) -> bool:
    """Whether 56 random bits fall under ``probability`` (TraceIdRatioBased, on 56 bits)."""
    if probability >= 1.0:
        return True
    return (random_value & RANDOM_MASK) < round(probability * (1 << RANDOM_BITS))


def trace_random(trace_id: int) -> int:
    """The random part of a trace id: its low 56 bits (W3C Trace Context Level 2)."""
    return trace_id & RANDOM_MASK


def journey_random(session_id: str) -> int:
    """56 bits that every service derives alike from a session id."""
    digest = hashlib.sha256(session_id.encode()).digest()
    return int.from_bytes(digest[:7], "big")


def parse(document: object) -> SamplingRules:
    """Validate a rule document (JSON or TOML data) into :class:`SamplingRules`."""
    top = _table(document, "sampling")
    _no_unknown(top, _DOCUMENT_KEYS, "")
    raw_rules = top.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError("rules", "must be a list of rules")
    if len(raw_rules) > MAX_RULES:
        raise RuleError("rules", f"at most {MAX_RULES} rules are allowed, got {len(raw_rules)}")
    rules = tuple(_head_rule(r, f"rules[{i}]", _RULE_KEYS) for i, r in enumerate(raw_rules))
    default = HeadRule(name="default")
    if "default" in top:
        default = _head_rule(top["default"], "default", _DEFAULT_KEYS)
        default = HeadRule(
            Match(), default.probability, default.max_per_second, default.by, "default"
        )
    tail = _tail(top.get("tail", {}))
    return SamplingRules(rules, default, tail)


def parse_json(text: str | bytes) -> SamplingRules:
    """Parse a JSON rule document."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RuleError("body", f"is not valid JSON: {exc}") from exc
    return parse(document)


def load_toml(path: Path) -> SamplingRules | None:
    """The ``[sampling]`` table of a ``threadline.toml``, or None when it has none."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(str(path), f"is not valid TOML: {exc}") from exc
    if "sampling" not in document:
        return None
    try:
        return parse(document["sampling"])
    except RuleError as exc:
        raise RuleError(f"[sampling] {exc.field} in {path}", exc.problem) from exc


def load_file(path: Path) -> SamplingRules:
    """A rule document from a ``.json`` file, or the ``[sampling]`` table of a ``.toml`` one."""
    if path.suffix == ".toml":
        rules = load_toml(path)
        if rules is None:
            raise RuleError(str(path), "has no [sampling] table")
        return rules
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(str(path), f"cannot be read: {exc}") from exc
    try:
        return parse_json(text)
    except RuleError as exc:
        raise RuleError(f"{exc.field} in {path}", exc.problem) from exc


def configured_rules(
    rules_file: str, environ: Mapping[str, str] | None = None
) -> SamplingRules | None:
    """Rules from ``rules_file`` if set, else the ``[sampling]`` table of ``threadline.toml``.

    ``threadline.toml`` is found as the settings loader finds it (``THREADLINE_CONFIG``,
    else the working directory). None when neither holds rules.
    """
    if rules_file:
        return load_file(Path(rules_file))
    environ = os.environ if environ is None else environ
    explicit = environ.get(CONFIG_FILE_ENV)
    return load_toml(Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE))


def _route_matches(pattern: str, span_name: str, attributes: Mapping[str, object]) -> bool:
    if fnmatchcase(span_name, pattern):
        return True
    _, _, path = span_name.partition(" ")
    if path and fnmatchcase(path, pattern):
        return True
    route = attributes.get(conventions.HTTP_ROUTE)
    return isinstance(route, str) and fnmatchcase(route, pattern)


def _method_of(span_name: str, attributes: Mapping[str, object]) -> str:
    method = attributes.get(HTTP_REQUEST_METHOD, attributes.get(LEGACY_HTTP_METHOD))
    if isinstance(method, str):
        return method.upper()
    head, _, rest = span_name.partition(" ")
    return head.upper() if rest else ""


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RuleError(where, "must be an object (a table)")
    return value


def _no_unknown(table: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    for key in table:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise RuleError(path, f"unknown key; known keys: {', '.join(sorted(known))}")


def _head_rule(value: object, where: str, known: frozenset[str]) -> HeadRule:
    table = _table(value, where)
    _no_unknown(table, known, where)
    probability = _number(table.get("probability", 1.0), f"{where}.probability")
    if not 0.0 <= probability <= 1.0:
        raise RuleError(f"{where}.probability", f"must be between 0 and 1, got {probability}")
    max_per_second: float | None = None
    if table.get("max_per_second") is not None:
        max_per_second = _number(table["max_per_second"], f"{where}.max_per_second")
        if max_per_second <= 0:
            raise RuleError(
                f"{where}.max_per_second", f"must be greater than 0, got {max_per_second}"
            )
    by_text = table.get("by", SampleBy.TRACE.value)
    try:
        by = SampleBy(by_text)
    except ValueError:
        allowed = ", ".join(b.value for b in SampleBy)
        raise RuleError(f"{where}.by", f"must be one of {allowed}, got {by_text!r}") from None
    name = _text(table.get("name", ""), f"{where}.name", allow_empty=True)
    environment = _optional_text(table.get("environment"), f"{where}.environment")
    match = replace(_match(table, where), environment=environment)
    return HeadRule(match, probability, max_per_second, by, name)


def _match(table: Mapping[str, Any], where: str) -> Match:
    service = _optional_text(table.get("service"), f"{where}.service")
    route = _optional_text(table.get("route"), f"{where}.route")
    method = _optional_text(table.get("method"), f"{where}.method")
    raw_attributes = table.get("attributes", {})
    attributes = _table(raw_attributes, f"{where}.attributes")
    pairs = tuple(
        (str(key), _text(val, f"{where}.attributes.{key}")) for key, val in attributes.items()
    )
    return Match(service, route, method.upper() if method else None, pairs)


def _tail(value: object) -> TailPolicy:
    table = _table(value, "tail")
    _no_unknown(table, _TAIL_KEYS, "tail")
    raw_keep = table.get("keep", [])
    if not isinstance(raw_keep, list):
        raise RuleError("tail.keep", "must be a list of matches")
    keep = []
    for i, raw in enumerate(raw_keep):
        where = f"tail.keep[{i}]"
        entry = _table(raw, where)
        _no_unknown(entry, _MATCH_KEYS, where)
        keep.append(_match(entry, where))
    latency = _table(table.get("latency_ms", {}), "tail.latency_ms")
    thresholds = []
    for operation, raw_ms in latency.items():
        ms = _number(raw_ms, f"tail.latency_ms.{operation}")
        if ms <= 0:
            raise RuleError(f"tail.latency_ms.{operation}", f"must be greater than 0, got {ms}")
        thresholds.append((str(operation), ms))
    return TailPolicy(tuple(keep), tuple(thresholds))


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(where, f"must be a number, got {value!r}")
    return float(value)


def _text(value: object, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise RuleError(where, f"must be a string, got {value!r}")
    if not allow_empty and not value:
        raise RuleError(where, "must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise RuleError(where, f"must be at most {MAX_NAME_LENGTH} characters")
    return value


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)

"""Scheduled probes: the one model and parser of ``[[probe]]`` tables and ``/api/probes``.

A document is plain data (JSON over ``/api/probes``, or ``[[probe]]`` tables in
``threadline.toml`` with the same keys). Each probe is a plan (``plan.parse_plan``'s
keys: ``services``, ``steps`` or ``url``) plus when to run it::

    {"probes": [
      {"name": "checkout", "interval": "1m", "services": ["checkout", "payments"],
       "steps": [{"name": "pay", "method": "POST", "url": "http://127.0.0.1:8000/pay",
                  "status": 200, "budget": "500ms"}]}
    ]}

- ``interval`` (required): how often the server runs it (a duration, ``1s`` to
  ``1d``; runs of one probe never overlap);
- ``wait`` (default ``15s``): the longest wait for its traces to arrive;
- ``alert_after`` (default 1): failed runs in a row before its alert fires.

Parsing rejects anything it does not understand with a :class:`ProbeDefinitionError`
whose ``field`` is the path of the bad value (``probes[0].steps[1].url``), so the API
answers 400 naming it. Shared ground: imports neither the SDK nor the server.
"""

from __future__ import annotations

import copy
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
from threadline.probing.plan import Plan, PlanError, parse_plan
from threadline.settings import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE

MAX_PROBES: Final = 100
# A name is part of URLs (``/drills#<name>``) and alert labels.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SECOND_NS: Final = 1_000_000_000
# A run sends real requests and waits for their traces (seconds): more often than
# every second is load, not a drill. A day bounds how stale a drill's verdict gets.
MIN_INTERVAL_NS: Final = SECOND_NS
MAX_INTERVAL_NS: Final = 86_400 * SECOND_NS
DEFAULT_WAIT: Final = "15s"
MAX_WAIT_NS: Final = 300 * SECOND_NS
MAX_ALERT_AFTER: Final = 100
# Defaults are left out of ``to_json``, so a document reads back as it was written.
_SCHEDULE_KEYS: Final = frozenset({"name", "interval", "wait", "alert_after"})
_KEYS: Final = _SCHEDULE_KEYS | {"services", "steps", "url"}
_DOCUMENT_KEYS: Final = frozenset({"probes"})


class ProbeDefinitionError(InvalidDocument):
    """A probe document is invalid."""


@dataclass(frozen=True, slots=True)
class ScheduledProbe:
    """One probe the server runs every ``interval_ns``."""

    name: str
    interval: str
    interval_ns: int
    plan: Plan
    # The plan as it was given, served back by ``GET /api/probes``.
    source: Mapping[str, Any]
    wait: str = DEFAULT_WAIT
    wait_ns: int = 15 * SECOND_NS
    alert_after: int = 1

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "interval": self.interval}
        if self.wait != DEFAULT_WAIT:
            document["wait"] = self.wait
        if self.alert_after != 1:
            document["alert_after"] = self.alert_after
        document.update(copy.deepcopy(dict(self.source)))  # the caller may change it
        return document


@dataclass(frozen=True, slots=True)
class ProbeDocument:
    """Every scheduled probe, in the order given; names are unique."""

    probes: tuple[ScheduledProbe, ...] = ()

    def get(self, name: str) -> ScheduledProbe | None:
        return next((probe for probe in self.probes if probe.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"probes": [probe.to_json() for probe in self.probes]}

    def etag(self) -> str:
        """A strong validator of the document's content."""
        return content_etag(self.to_json())


def parse(document: object) -> ProbeDocument:
    """Validate a probe document (JSON or TOML data) into :class:`ProbeDocument`."""
    if not isinstance(document, Mapping):
        raise ProbeDefinitionError("body", 'must be an object: {"probes": [...]}')
    for key in document:
        if key not in _DOCUMENT_KEYS:
            raise ProbeDefinitionError(str(key), 'unknown key; a document is {"probes": [...]}')
    raw = document.get("probes", [])
    if not isinstance(raw, list):
        raise ProbeDefinitionError("probes", "must be a list of probes")
    if len(raw) > MAX_PROBES:
        raise ProbeDefinitionError("probes", f"at most {MAX_PROBES} probes, got {len(raw)}")
    probes = tuple(parse_probe(value, f"probes[{i}]") for i, value in enumerate(raw))
    seen: set[str] = set()
    for i, probe in enumerate(probes):
        if probe.name in seen:
            raise ProbeDefinitionError(
                f"probes[{i}].name", f"{probe.name!r} is used by an earlier probe"
            )
        seen.add(probe.name)
    return ProbeDocument(probes)


def parse_json(text: str | bytes) -> ProbeDocument:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProbeDefinitionError("body", f"is not valid JSON: {exc}") from exc
    return parse(document)


def parse_probe(value: object, where: str) -> ScheduledProbe:
    """One probe table; ``where`` prefixes the field named in errors."""
    if not isinstance(value, Mapping):
        raise ProbeDefinitionError(where, "must be an object (a table)")
    for key in value:
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise ProbeDefinitionError(f"{where}.{key}", f"unknown key; known keys: {known}")
    name = value.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ProbeDefinitionError(
            f"{where}.name",
            "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    interval = _duration(value.get("interval"), f"{where}.interval")
    if not MIN_INTERVAL_NS <= interval[1] <= MAX_INTERVAL_NS:
        raise ProbeDefinitionError(f"{where}.interval", "must be between 1s and 1d")
    wait = _duration(value.get("wait", DEFAULT_WAIT), f"{where}.wait")
    if not 0 < wait[1] <= MAX_WAIT_NS:
        raise ProbeDefinitionError(f"{where}.wait", "must be longer than 0 and at most 5m")
    alert_after = value.get("alert_after", 1)
    if (
        isinstance(alert_after, bool)
        or not isinstance(alert_after, int)
        or not 1 <= alert_after <= MAX_ALERT_AFTER
    ):
        raise ProbeDefinitionError(
            f"{where}.alert_after", f"must be a whole number from 1 to {MAX_ALERT_AFTER}"
        )
    source = {key: item for key, item in value.items() if key not in _SCHEDULE_KEYS}
    try:
        plan = parse_plan({**source, "name": name})
    except PlanError as exc:
        field = f"{where}.{exc.field}" if exc.field else where
        raise ProbeDefinitionError(field, str(exc)) from exc
    return ScheduledProbe(
        name=name,
        interval=interval[0],
        interval_ns=interval[1],
        plan=plan,
        source=source,
        wait=wait[0],
        wait_ns=wait[1],
        alert_after=alert_after,
    )


def load_toml(path: Path) -> ProbeDocument | None:
    """The ``[[probe]]`` tables of a ``threadline.toml``; None when it has none."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ProbeDefinitionError(str(path), f"is not valid TOML: {exc}") from exc
    if "probe" not in document:
        return None
    try:
        return parse({"probes": document["probe"]})
    except ProbeDefinitionError as exc:
        field = exc.field.replace("probes[", "probe[", 1)
        raise ProbeDefinitionError(f"[[probe]] {field} in {path}", exc.problem) from exc


def load_file(path: Path) -> ProbeDocument:
    """A document from a saved ``.json`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProbeDefinitionError(str(path), f"cannot be read: {exc}") from exc
    try:
        return parse_json(text)
    except ProbeDefinitionError as exc:
        raise ProbeDefinitionError(f"{exc.field} in {path}", exc.problem) from exc


def configured_probes(environ: Mapping[str, str] | None = None) -> ProbeDocument:
    """The ``[[probe]]`` tables of ``threadline.toml``, found as the settings loader finds it."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(CONFIG_FILE_ENV)
    return load_toml(Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)) or ProbeDocument()


def _duration(value: object, where: str) -> tuple[str, int]:
    if not isinstance(value, str) or not value.strip():
        raise ProbeDefinitionError(where, 'must be a duration such as "30s" or "5m"')
    try:
        return value, parse_duration_ns(value)
    except ValueError as exc:
        raise ProbeDefinitionError(where, str(exc)) from exc

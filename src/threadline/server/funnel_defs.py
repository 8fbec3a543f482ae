"""Funnel definitions: named, ordered steps, from ``[[funnel]]`` or ``/api/funnels``.

A document is ``{"funnels": [{"name": "checkout", "steps": [...]}]}``; a step is an
operation (``"POST /checkout"``, matching it in any service) or a table
``{"service": "web", "operation": "POST /pay"}``. In ``threadline.toml``::

    [[funnel]]
    name = "checkout"
    steps = ["GET /product", "POST /cart", "POST /checkout", "POST /pay"]

The server keeps the document in the store (``kept_documents``: the same for every
server process on the database, a strong ETag, ``If-Match``), importing once the
``<db>.funnels.json`` an older release kept beside the DuckDB file; until the first
``PUT`` it serves the ``[[funnel]]`` tables. A bad document is refused whole,
naming the field.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from threadline.etags import content_etag
from threadline.invalid_document import InvalidDocument
from threadline.server.analysis.funnel import StepMatch
from threadline.server.kept_documents import KeptDocument, open_document
from threadline.server.storage.base import Store
from threadline.settings import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE

FUNNELS_FILE_SUFFIX: Final = ".funnels.json"
# Enough for every product flow we have seen; a bound keeps one document small.
MAX_FUNNELS: Final = 100
MAX_STEPS: Final = 20
MAX_TEXT: Final = 200


class FunnelError(InvalidDocument):
    """A funnel document is invalid."""


@dataclass(frozen=True, slots=True)
class Funnel:
    name: str
    steps: tuple[StepMatch, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": [
                s.operation
                if s.service is None
                else {"service": s.service, "operation": s.operation}
                for s in self.steps
            ],
        }


@dataclass(frozen=True, slots=True)
class FunnelDocument:
    funnels: tuple[Funnel, ...] = ()

    def get(self, name: str) -> Funnel | None:
        return next((f for f in self.funnels if f.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"funnels": [f.to_json() for f in self.funnels]}

    def etag(self) -> str:
        return content_etag(self.to_json())


def parse(document: object) -> FunnelDocument:
    if not isinstance(document, Mapping):
        raise FunnelError("body", "must be an object with a `funnels` list")
    unknown = sorted(set(document) - {"funnels"})
    if unknown:
        raise FunnelError(unknown[0], "is not a known field; allowed: funnels")
    items = document.get("funnels", [])
    if not isinstance(items, list):
        raise FunnelError("funnels", "must be a list")
    if len(items) > MAX_FUNNELS:
        raise FunnelError("funnels", f"may hold at most {MAX_FUNNELS} funnels")
    funnels = tuple(_funnel(item, f"funnels[{i}]") for i, item in enumerate(items))
    names = [f.name for f in funnels]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise FunnelError(f"funnels[{i}].name", f"{name!r} is used twice")
    return FunnelDocument(funnels)


def parse_json(text: str | bytes) -> FunnelDocument:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FunnelError("body", f"is not valid JSON: {exc}") from exc
    return parse(document)


def _funnel(item: object, where: str) -> Funnel:
    if not isinstance(item, Mapping):
        raise FunnelError(where, "must be an object (a table)")
    unknown = sorted(set(item) - {"name", "steps"})
    if unknown:
        raise FunnelError(f"{where}.{unknown[0]}", "is not a known field; allowed: name, steps")
    name = _text(item.get("name"), f"{where}.name")
    steps = item.get("steps")
    if not isinstance(steps, list) or not 2 <= len(steps) <= MAX_STEPS:
        raise FunnelError(f"{where}.steps", f"must be a list of 2 to {MAX_STEPS} steps")
    return Funnel(name, tuple(_step(s, f"{where}.steps[{i}]") for i, s in enumerate(steps)))


def _step(value: object, where: str) -> StepMatch:
    if isinstance(value, str):
        return StepMatch(_text(value, where))
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"service", "operation"})
        if unknown:
            raise FunnelError(f"{where}.{unknown[0]}", "is not a known field")
        return StepMatch(
            _text(value.get("operation"), f"{where}.operation"),
            _text(value.get("service"), f"{where}.service"),
        )
    raise FunnelError(where, "must be an operation or {service, operation}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FunnelError(where, f"must be a non-empty string, got {value!r}")
    if len(value) > MAX_TEXT:
        raise FunnelError(where, f"may be at most {MAX_TEXT} characters")
    return value


def load_toml(path: Path) -> FunnelDocument:
    """The ``[[funnel]]`` tables of a ``threadline.toml`` (none: an empty document)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return FunnelDocument()
    except tomllib.TOMLDecodeError as exc:
        raise FunnelError(str(path), f"is not valid TOML: {exc}") from exc
    try:
        return parse({"funnels": document.get("funnel", [])})
    except FunnelError as exc:
        field = exc.field.replace("funnels[", "funnel[", 1)
        raise FunnelError(f"[[funnel]] {field} in {path}", exc.problem) from exc


DOCUMENT: Final = "funnels"

KeptFunnels = KeptDocument[FunnelDocument]


def open_funnels(store: Store, db: Path, environ: Mapping[str, str] | None = None) -> KeptFunnels:
    """The funnels in ``store``, else those saved beside ``db`` (imported), else
    ``threadline.toml``'s."""

    def configured() -> FunnelDocument:
        env = os.environ if environ is None else environ
        explicit = env.get(CONFIG_FILE_ENV)
        return load_toml(Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE))

    return open_document(
        store,
        DOCUMENT,
        imported_from=db.with_name(db.name + FUNNELS_FILE_SUFFIX),
        load_file=_load_file,
        default=configured,
        encode=FunnelDocument.to_json,
        decode=parse_json,
    )


def _load_file(path: Path) -> FunnelDocument:
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except FunnelError as exc:
        raise FunnelError(f"{exc.field} in {path}", exc.problem) from exc

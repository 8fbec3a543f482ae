"""A probe plan: the steps of a synthetic journey and what its traces must show.

Read from a small TOML file (or the same mapping from the server's ``/api/probes``)::

    name = "checkout"
    services = ["gateway", "orders", "payments"]   # each must appear in the traces

    [[steps]]
    name = "add to cart"
    method = "POST"
    url = "http://127.0.0.1:8000/cart"
    headers = { "Content-Type" = "application/json" }
    body = '{"sku": "tea", "qty": 1}'
    status = 200          # expected status (default 200)
    budget = "500ms"      # latency budget of the step, at its entry span (optional)

Every key is checked: an unknown key, a bad URL or a bad budget is a ``PlanError``
naming the key, never a silently ignored value.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from threadline.durations import parse_duration_ns

# A journey of more steps is a load test, not a probe: probes run every few minutes.
MAX_STEPS: Final = 50
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PLAN_KEYS: Final = frozenset({"name", "services", "steps", "url"})
_STEP_KEYS: Final = frozenset({"name", "method", "url", "headers", "body", "status", "budget"})


class PlanError(ValueError):
    """The plan is not usable; the message names the key and what is allowed.

    ``field`` is the path of the bad value (``steps[2].url``), so the server's
    ``/api/probes`` answers 400 naming it; empty for the plan as a whole.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Step:
    """One request of the journey."""

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    status: int = 200
    budget_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The steps, in order, and the services their traces must reach."""

    name: str
    steps: tuple[Step, ...]
    services: tuple[str, ...] = ()


def single_request(url: str, *, method: str = "GET", services: tuple[str, ...] = ()) -> Plan:
    """A plan of one request (``threadline probe URL``)."""
    return parse_plan(
        {"name": url, "services": list(services), "steps": [{"url": url, "method": method}]}
    )


def load_plan(path: Path) -> Plan:
    """The plan in the TOML file ``path``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read probe file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"probe file {path} is not valid TOML: {exc}") from exc
    return parse_plan(data, default_name=path.stem)


def parse_plan(data: Mapping[str, object], *, default_name: str = "probe") -> Plan:
    """The plan described by ``data`` (a TOML table or JSON object)."""
    _only(data, _PLAN_KEYS, "the probe")
    name = _text(data.get("name", default_name), "name")
    services = data.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        raise PlanError("services must be a list of service names", "services")
    steps = data.get("steps")
    if "url" in data:
        if steps is not None:
            raise PlanError("give either url (one request) or [[steps]], not both", "url")
        steps = [{"url": _text(data["url"], "url")}]
    if not isinstance(steps, list) or not steps:
        raise PlanError("a probe needs at least one [[steps]] entry (or a url)", "steps")
    if len(steps) > MAX_STEPS:
        raise PlanError(
            f"a probe has at most {MAX_STEPS} steps, this one has {len(steps)}", "steps"
        )
    parsed = tuple(_step(step, number) for number, step in enumerate(steps, start=1))
    return Plan(name=name, steps=parsed, services=tuple(services))


def _step(raw: object, number: int) -> Step:
    where = f"steps[{number}]"
    if not isinstance(raw, Mapping):
        raise PlanError(f"{where} must be a table", where)
    _only(raw, _STEP_KEYS, where)
    url = _text(raw.get("url"), f"{where}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PlanError(f"{where}.url must be an http(s) URL, not {url!r}", f"{where}.url")
    method = _text(raw.get("method", "GET"), f"{where}.method").upper()
    if method not in METHODS:
        raise PlanError(
            f"{where}.method must be one of {', '.join(sorted(METHODS))}", f"{where}.method"
        )
    headers = raw.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise PlanError(f"{where}.headers must be a table of text values", f"{where}.headers")
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        raise PlanError(f"{where}.body must be text", f"{where}.body")
    status = raw.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise PlanError(f"{where}.status must be an HTTP status (100-599)", f"{where}.status")
    budget = raw.get("budget")
    budget_ns = None
    if budget is not None:
        try:
            budget_ns = parse_duration_ns(_text(budget, f"{where}.budget"))
        except ValueError as exc:
            raise PlanError(f"{where}.budget: {exc}", f"{where}.budget") from exc
    return Step(
        name=_text(raw.get("name", f"step {number}"), f"{where}.name"),
        method=method,
        url=url,
        headers=tuple(headers.items()),
        body=body,
        status=status,
        budget_ns=budget_ns,
    )


def _only(data: Mapping[str, object], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        prefix = "" if where == "the probe" else f"{where}."
        raise PlanError(
            f"{where} has unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
            prefix + unknown[0],
        )


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"{key} must be non-empty text", key)
    return value

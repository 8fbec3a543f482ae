"""``/api/probes``: the scheduled probes, and what their drills found.

- ``GET /api/probes``: the probe document with a strong ``ETag`` (``If-None-Match``
  → 304), like ``/api/slos``; a step's header values (credentials, often) are
  masked for anyone but an admin.
- ``PUT /api/probes`` (admin): replaces the document, validated whole first: a bad
  one answers 400 with ``{"error": "<field>: <problem>", "field": "<field>"}``; with
  ``If-Match``, a document changed since it was read answers 412.
- ``GET /api/probes/results`` (``?probe=``, ``?limit=`` runs per probe, default 50):
  every probe's history, newest first, its last failure with its trace and verdict,
  and its alert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import APIRouter, Request

from threadline.probing.definitions import ProbeDefinitionError, ProbeDocument, parse_json
from threadline.server.alerting.state import is_drill
from threadline.server.api.document_routes import DocumentRoutes
from threadline.server.api.params import parse_limit
from threadline.server.auth import MASK
from threadline.server.auth.context import principal_of
from threadline.server.auth.roles import Role
from threadline.server.drills import models
from threadline.server.drills.probe_document import KeptProbes
from threadline.server.errors import NotFound
from threadline.server.storage.base import Store

# A document of the most probes allowed, each of the most steps, is well under this.
MAX_PROBES_BODY_BYTES: Final = 1024 * 1024
DEFAULT_RUNS: Final = 50


def build_probe_router(
    probes: KeptProbes,
    store: Store,
    *,
    running: Callable[[], frozenset[str]],
    trace_url: Callable[[str], str],
) -> APIRouter:
    """The probe routes, to be mounted under ``/api``."""
    router = APIRouter()

    PROBES.add_to(router, probes)

    @router.get(
        "/probes/results",
        summary="Each scheduled probe's drill history, last failure and alert",
        response_model=models.Drills,
    )
    def get_results(probe: str | None = None, limit: str | None = None) -> models.Drills:
        runs = parse_limit(limit, default=DEFAULT_RUNS)
        document = probes.get().value
        chosen = document.probes
        if probe:
            found = document.get(probe)
            if found is None:
                raise NotFound(f"no probe is named {probe!r}; GET /api/probes lists them")
            chosen = (found,)
        name = chosen[0].name if len(chosen) == 1 else None
        history = store.drill_results(name, limit=runs)
        failures = store.drill_results(name, limit=1, failed=True)
        alerts = {r.slo: r for r in store.alert_states() if is_drill(r)}
        now_running = running()
        return models.Drills(
            drills=[
                models.drill(
                    p,
                    [r for r in history if r.probe == p.name],
                    next((r for r in failures if r.probe == p.name), None),
                    alerts.get(p.name),
                    running=p.name in now_running,
                    trace_url=trace_url,
                )
                for p in chosen
            ]
        )

    return router


def _rendered(document: ProbeDocument, request: Request) -> dict[str, Any]:
    """The document as ``request``'s client may see it: header values (credentials of
    the probed services) are masked for anyone but an admin."""
    data: dict[str, Any] = document.to_json()
    principal = principal_of(request.scope)
    if principal is not None and principal.role.allows(Role.ADMIN):
        return data
    for probe in data["probes"]:
        for step in probe.get("steps", []):
            if isinstance(step, dict) and isinstance(step.get("headers"), dict):
                step["headers"] = {name: MASK for name in step["headers"]}
    return data


PROBES: Final[DocumentRoutes[ProbeDocument]] = DocumentRoutes(
    path="/probes",
    parse=parse_json,
    invalid=ProbeDefinitionError,
    render=_rendered,
    max_bytes=MAX_PROBES_BODY_BYTES,
    called="a probe document",
    contents="the probes",
    get_summary="The scheduled probes (ETag, If-None-Match)",
    put_summary="Replace the scheduled probes (validated; If-Match)",
)

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
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.probing.definitions import ProbeDefinitionError, ProbeDocument, parse_json
from threadline.server.alerting.state import is_drill
from threadline.server.api.params import parse_limit
from threadline.server.auth import MASK
from threadline.server.auth.context import principal_of
from threadline.server.auth.roles import Role
from threadline.server.drills import models
from threadline.server.drills.probe_document import KeptProbes
from threadline.server.errors import NotFound, PayloadTooLarge, Unavailable
from threadline.server.kept_documents import Versioned, tag_listed
from threadline.server.storage.base import Store, StoreError

# A document of the most probes allowed, each of the most steps, is well under this.
MAX_PROBES_BODY_BYTES: Final = 1024 * 1024
SAVE_FAILED_RETRY_AFTER_S: Final = 5
DEFAULT_RUNS: Final = 50
# What a viewer sees in place of a step's header value.


def build_probe_router(
    probes: KeptProbes,
    store: Store,
    *,
    running: Callable[[], frozenset[str]],
    trace_url: Callable[[str], str],
) -> APIRouter:
    """The probe routes, to be mounted under ``/api``."""
    router = APIRouter()

    @router.get("/probes", summary="The scheduled probes (ETag, If-None-Match)")
    def get_probes(request: Request) -> Response:
        current = probes.get()
        if tag_listed(request.headers.get("if-none-match"), current.etag):
            return Response(status_code=304, headers={"ETag": current.etag})
        principal = principal_of(request.scope)
        admin = principal is not None and principal.role.allows(Role.ADMIN)
        return _document(current, masked=not admin)

    @router.put("/probes", summary="Replace the scheduled probes (validated; If-Match)")
    async def put_probes(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_PROBES_BODY_BYTES:
            raise PayloadTooLarge(f"a probe document may be at most {MAX_PROBES_BODY_BYTES} bytes")
        try:
            parsed = parse_json(body)
        except ProbeDefinitionError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        try:
            saved = await run_in_threadpool(
                probes.put, parsed, if_match=request.headers.get("if-match")
            )
        except StoreError as exc:
            raise Unavailable(
                f"the probes could not be saved ({exc})", retry_after_s=SAVE_FAILED_RETRY_AFTER_S
            ) from exc
        if saved is None:
            return JSONResponse(
                {"error": "the probes changed since they were read; GET them again"},
                status_code=412,
            )
        return _document(saved)

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


def _document(current: Versioned[ProbeDocument], *, masked: bool = False) -> JSONResponse:
    """The document; ``masked`` hides header values (credentials of the probed
    services) from anyone but an admin."""
    document = current.value.to_json()
    if masked:
        for probe in document["probes"]:
            for step in probe.get("steps", []):
                if isinstance(step, dict) and isinstance(step.get("headers"), dict):
                    step["headers"] = {name: MASK for name in step["headers"]}
    return JSONResponse(document, headers={"ETag": current.etag})

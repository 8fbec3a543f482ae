"""``/api/sampling``: the sampling rules services poll, and tail sampling's counts.

- ``GET /api/sampling`` answers the rule document with a strong ``ETag``; a request
  whose ``If-None-Match`` carries that tag gets ``304 Not Modified`` and no body, so
  a fleet polling unchanged rules costs almost nothing.
- ``PUT /api/sampling`` replaces the document. It is validated whole before anything
  is saved: a bad one answers 400 with ``{"error": "<field>: <problem>", "field":
  "<field>"}``. With ``If-Match``, a document changed since the client read it
  answers 412 (two editors cannot silently overwrite each other).
- ``GET /api/sampling/tail/stats``: traces kept by reason and dropped by tail sampling.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.sampling_rules import RuleError, parse_json
from threadline.server.errors import PayloadTooLarge, Unavailable
from threadline.server.sampling.rule_store import RuleStore, VersionedRules, tag_listed
from threadline.server.sampling.tail import TailSampler, TailStats
from threadline.server.storage.base import StoreError

# A rule document is a few kilobytes; a megabyte leaves room for the most rules
# allowed without letting a client make the server buffer an arbitrary body.
MAX_RULES_BODY_BYTES: Final = 1024 * 1024
# A failed save is a store problem that may pass; the client can retry.
SAVE_FAILED_RETRY_AFTER_S: Final = 5


def build_sampling_router(rules: RuleStore, tail: TailSampler | None) -> APIRouter:
    """The sampling routes, to be mounted under ``/api``."""
    router = APIRouter()

    @router.get("/sampling", summary="The sampling rules services apply (ETag, If-None-Match)")
    def get_rules(request: Request) -> Response:
        current = rules.get()
        if tag_listed(request.headers.get("if-none-match"), current.etag):
            return Response(status_code=304, headers={"ETag": current.etag})
        return _document(current)

    @router.put("/sampling", summary="Replace the sampling rules (validated; If-Match)")
    async def put_rules(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_RULES_BODY_BYTES:
            raise PayloadTooLarge(f"a rule document may be at most {MAX_RULES_BODY_BYTES} bytes")
        try:
            parsed = parse_json(body)
        except RuleError as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
        try:
            saved = await run_in_threadpool(
                rules.put, parsed, if_match=request.headers.get("if-match")
            )
        except StoreError as exc:
            raise Unavailable(
                f"the rules could not be saved ({exc})", retry_after_s=SAVE_FAILED_RETRY_AFTER_S
            ) from exc
        if saved is None:
            return JSONResponse(
                {"error": "the rules changed since they were read; GET them again"},
                status_code=412,
            )
        return _document(saved)

    @router.get("/sampling/tail/stats", summary="Traces kept (by reason) and dropped by tail")
    def tail_stats() -> JSONResponse:
        stats = tail.stats() if tail is not None else TailStats(enabled=False)
        return JSONResponse(stats.to_json())

    return router


def _document(current: VersionedRules) -> JSONResponse:
    return JSONResponse(current.rules.to_json(), headers={"ETag": current.etag})

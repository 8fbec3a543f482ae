"""``/api/sampling``: the sampling rules services poll, and tail sampling's counts.

- ``GET /api/sampling`` answers the rule document with a strong ``ETag``
  (``If-None-Match`` → 304: a fleet polling unchanged rules costs almost nothing);
  ``PUT /api/sampling`` replaces it, validated whole (400 naming the field; with
  ``If-Match``, 412 on a changed document). See ``document_routes``.
- ``GET /api/sampling/tail/stats``: traces kept by reason and dropped by tail sampling.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from threadline.sampling_rules import RuleError, SamplingRules, parse_json
from threadline.server.api.document_routes import DocumentRoutes
from threadline.server.sampling.rule_store import RuleStore
from threadline.server.sampling.tail import TailSampler, TailStats

# A rule document is a few kilobytes; a megabyte leaves room for the most rules
# allowed without letting a client make the server buffer an arbitrary body.
MAX_RULES_BODY_BYTES: Final = 1024 * 1024

RULES: Final[DocumentRoutes[SamplingRules]] = DocumentRoutes(
    path="/sampling",
    parse=parse_json,
    invalid=RuleError,
    render=lambda rules, _: rules.to_json(),
    max_bytes=MAX_RULES_BODY_BYTES,
    called="a rule document",
    contents="the rules",
    get_summary="The sampling rules services apply (ETag, If-None-Match)",
    put_summary="Replace the sampling rules (validated; If-Match)",
)


def build_sampling_router(rules: RuleStore, tail: TailSampler | None) -> APIRouter:
    """The sampling routes, to be mounted under ``/api``."""
    router = APIRouter()
    RULES.add_to(router, rules)

    @router.get("/sampling/tail/stats", summary="Traces kept (by reason) and dropped by tail")
    def tail_stats() -> JSONResponse:
        stats = tail.stats() if tail is not None else TailStats(enabled=False)
        return JSONResponse(stats.to_json())

    return router

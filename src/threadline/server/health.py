"""Probes for orchestrators: ``/healthz`` (the process answers) and ``/readyz`` (it can ingest).

``/healthz`` does no work at all, so a liveness probe never restarts a server that is
merely busy. ``/readyz`` asks the store for its cheap health (no query, no write):
it answers 503 when the store cannot take writes or its write queue is full, which
is exactly when ingest would answer 503 too, so a load balancer sends spans elsewhere.
It also says how many commits the store has not folded yet (``unfolded_commits``):
a script that reads error origins right after sending spans waits for 0.

Both run on the event loop itself (``async def``), never on the worker thread pool:
slow queries fill that pool, and a probe queued behind them would time out on a
server that is alive. Neither waits on the store's reads (``Store.health`` reads
counters and asks the file system) nor passes through the read gate (``read_gate``).
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from threadline.server.ingest.clock import FutureStarts
from threadline.server.storage.base import Store

HEALTH_PATH: Final = "/healthz"
READY_PATH: Final = "/readyz"


def build_health_router(store: Store, future_starts: FutureStarts | None = None) -> APIRouter:
    """The probes; ``/readyz`` also reports the spans ingest moved back from the future."""
    router = APIRouter()

    @router.get(HEALTH_PATH, summary="Liveness: the server process answers.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(READY_PATH, summary="Readiness: the store is writable and not saturated.")
    async def readyz() -> JSONResponse:
        health = store.health()
        problems = []
        if not health.writable:
            problems.append(health.problem or "the store does not accept writes")
        if health.saturated:
            problems.append(
                f"the write queue is full ({health.pending_batches} of "
                f"{health.max_pending_batches} batches waiting)"
            )
        body = {
            "status": "not ready" if problems else "ready",
            "store_writable": health.writable,
            "pending_batches": health.pending_batches,
            "max_pending_batches": health.max_pending_batches,
            "unfolded_commits": health.unfolded_commits,
            "problems": problems,
            "future_starts_clamped": future_starts.count if future_starts is not None else 0,
        }
        return JSONResponse(body, status_code=503 if problems else 200)

    return router

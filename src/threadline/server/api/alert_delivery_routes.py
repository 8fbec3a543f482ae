"""``GET /api/alerts/receivers``: how alert deliveries to each receiver went.

Per receiver (``alert_webhook_urls``, ``alertmanager_url``, ``slack_webhook_url``):
bodies sent, attempts retried, sends abandoned, alerts dropped on a full queue, the
last error and when, and whether it is healthy (no failure since its last success).
URLs show scheme and host only. ``threadline doctor --server`` reads it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from threadline.server.alerting.delivery import Dispatcher

RECEIVERS_PATH = "/alerts/receivers"


def build_alert_delivery_router(dispatcher: Dispatcher) -> APIRouter:
    """The route, to be mounted under ``/api``."""
    router = APIRouter()

    @router.get(RECEIVERS_PATH, summary="Alert receivers and how their deliveries went")
    def receivers() -> JSONResponse:
        return JSONResponse(dispatcher.status().to_json())

    return router

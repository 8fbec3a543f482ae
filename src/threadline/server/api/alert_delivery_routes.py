"""``GET /api/alerts/receivers``: how alert deliveries to each receiver went.

Per receiver (``alert_webhook_urls``, ``alertmanager_url``, ``slack_webhook_url``):
bodies sent, attempts retried, sends abandoned, alerts dropped on a full queue, the
last error and when, and whether it is healthy (no failure since its last success).
URLs show scheme and host only. ``threadline doctor`` reads it. The answer's shape is
declared (``DeliveryAnswer``), so ``/api/openapi.json`` describes it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from threadline.server.alerting.delivery import Dispatcher

RECEIVERS_PATH = "/alerts/receivers"


class ReceiverAnswer(BaseModel):
    name: str = Field(description="webhook-1, webhook-2, …, alertmanager or slack.")
    kind: str = Field(description="webhook, alertmanager or slack.")
    url: str = Field(description="Scheme and host of the receiver's URL (the rest may be secret).")
    healthy: bool = Field(description="No failure since the last success.")
    queued: int = Field(description="Alerts waiting to be sent.")
    sent: int = Field(description="Bodies the receiver accepted.")
    retries: int = Field(description="Failed attempts that were tried again.")
    failed: int = Field(description="Sends abandoned (deadline passed, or refused with a 4xx).")
    dropped: int = Field(description="Alerts never tried because the queue was full.")
    firing: int = Field(description="Alerts re-sent while they fire (Alertmanager only).")
    last_error: str = Field(description="The last failure, empty if none.")
    last_error_ns: int | None = Field(description="When it happened, Unix nanoseconds.")
    last_success_ns: int | None = Field(description="The last accepted send, Unix nanoseconds.")


class DeliveryAnswer(BaseModel):
    healthy: bool = Field(description="Every receiver is healthy.")
    receivers: list[ReceiverAnswer]


def build_alert_delivery_router(dispatcher: Dispatcher) -> APIRouter:
    """The route, to be mounted under ``/api``."""
    router = APIRouter()

    @router.get(
        RECEIVERS_PATH,
        summary="Alert receivers and how their deliveries went",
        responses={200: {"model": DeliveryAnswer}},
    )
    def receivers() -> JSONResponse:
        return JSONResponse(dispatcher.status().to_json())

    return router

"""``GET /metrics``: Prometheus text format, or OpenMetrics (with exemplars) by ``Accept``.

Prometheus asks for OpenMetrics first in its ``Accept`` header, and keeps the
exemplars when run with ``--enable-feature=exemplar-storage``. The handler only
translates: the families come from ``server.metrics``. The route lives outside
``/api`` where scrapers look for it; it needs a viewer token when tokens are set.
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import APIRouter, Request, Response

from threadline.conventions import METRICS_PATH
from threadline.server.errors import Unavailable
from threadline.server.metrics import MetricsRegistry
from threadline.server.storage.base import StoreError

logger = logging.getLogger(__name__)

# A store that failed one read is most likely busy compacting; the next scrape will do.
STORE_RETRY_AFTER_S: Final = 15


def build_metrics_router(registry: MetricsRegistry) -> APIRouter:
    router = APIRouter()

    @router.get(
        METRICS_PATH,
        summary="Metrics for Prometheus: text format, or OpenMetrics with trace exemplars.",
        response_class=Response,
    )
    def metrics(request: Request) -> Response:
        try:
            body, content_type = registry.render(request.headers.get("accept"))
        except StoreError as exc:
            logger.warning("/metrics could not read the store: %s", exc)
            raise Unavailable(
                f"the store could not be read ({exc}); retry later", STORE_RETRY_AFTER_S
            ) from exc
        return Response(body, media_type=content_type)

    return router

"""``/api/journeys/map`` and ``/api/funnels``: how users flow and where they leave.

- ``GET /api/journeys/map?window=1h&end=&service=&attr=key=value``: steps and transitions.
- ``GET /api/funnels``: the funnel document with a strong ``ETag``.
- ``PUT /api/funnels`` (admin): replaces it, validated whole (400 naming the field;
  ``If-Match`` on a changed document: 412).
- ``GET /api/funnels/{name}?window=&end=&service=&attr=``: the funnel over the window.

``attr=key=value`` keeps journeys with a step in the window whose entry span carries
that attribute (a plan, a tier); user and session ids are refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query

from threadline.server import journey_query
from threadline.server.api import params
from threadline.server.api.document_routes import DocumentRoutes
from threadline.server.errors import NotFound
from threadline.server.funnel_defs import FunnelDocument, FunnelError, KeptFunnels, parse_json
from threadline.server.query import QueryService
from threadline.server.storage.base import Store

MAX_FUNNELS_BODY_BYTES: Final = 256 * 1024
FUNNELS: Final[DocumentRoutes[FunnelDocument]] = DocumentRoutes(
    path="/funnels",
    parse=parse_json,
    invalid=FunnelError,
    render=lambda document, _: document.to_json(),
    max_bytes=MAX_FUNNELS_BODY_BYTES,
    called="a funnel document",
    contents="the funnels",
    get_summary="The funnel definitions, with an ETag",
    put_summary="Replace the funnel definitions (admin)",
)

Text = str | None
Window = Annotated[Text, Query(description="How far back to look, e.g. 1h, 24h (default 1h).")]
End = Annotated[Text, Query(description="End of the window: RFC 3339 or Unix ms (default now).")]
Service = Annotated[Text, Query(description="Only journeys touching this service.")]
Attr = Annotated[
    list[str] | None,
    Query(
        description="Only journeys with a step whose entry span has this attribute,"
        " key=value (e.g. app.plan=trial); user and session ids are refused."
    ),
]


def build_journey_router(store: Store, query: QueryService, funnels: KeptFunnels) -> APIRouter:
    """The journey map and funnel routes, to be mounted under ``/api``."""
    router = APIRouter()

    @router.get("/journeys/map", summary="Journey steps, transitions and drop-offs")
    def journey_map(
        window: Window = None, end: End = None, service: Service = None, attr: Attr = None
    ) -> Any:
        span = query.window(params.window_request(window, end))
        only = params.text_filter("service", service)
        return journey_query.journey_map(store, span, only, params.journey_attribute(attr))

    FUNNELS.add_to(router, funnels)

    @router.get("/funnels/{name}", summary="A funnel over a window, and why journeys left")
    def get_funnel(
        name: str,
        window: Window = None,
        end: End = None,
        service: Service = None,
        attr: Attr = None,
    ) -> Any:
        definition = funnels.get().value.get(name)
        if definition is None:
            raise NotFound(f"no funnel is named {name!r}; GET /api/funnels lists them")
        span = query.window(params.window_request(window, end))
        only = params.text_filter("service", service)
        attribute = params.journey_attribute(attr)
        return journey_query.funnel(store, definition, span, only, attribute)

    return router

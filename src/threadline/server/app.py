"""create_app: the one place the server's parts are wired together."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from threadline.conventions import API_PREFIX
from threadline.server.alerting.delivery import Dispatcher
from threadline.server.alerting.evaluator import Deliver
from threadline.server.api.alert_delivery_routes import build_alert_delivery_router
from threadline.server.api.erase_routes import build_erase_router
from threadline.server.api.journey_routes import build_journey_router
from threadline.server.api.metrics_routes import build_metrics_router
from threadline.server.api.routes import build_api_router
from threadline.server.api.slo_models import DeliveryFailure
from threadline.server.api.slo_routes import DeliveryFailures
from threadline.server.auth import TokenTable, client_key, install_access_control
from threadline.server.drills.wiring import install_drills
from threadline.server.erasure_forms import ErasureKeys
from threadline.server.errors import ThreadlineError
from threadline.server.funnel_defs import open_funnels
from threadline.server.health import build_health_router
from threadline.server.ingest.clock import FutureStarts
from threadline.server.ingest.counters import IngestCounters
from threadline.server.ingest.receiver import build_ingest_router
from threadline.server.ingest.workers import span_decoding
from threadline.server.metrics.wiring import build_registry
from threadline.server.query import QueryService
from threadline.server.read_gate import ReadGate, check_gate_settings
from threadline.server.sampling.wiring import install_sampling
from threadline.server.slo_wiring import install_alerting
from threadline.server.storage.base import Store, StoreUnsupported
from threadline.server.ui import build_ui_router
from threadline.server.ui.api_docs import build_api_docs_router
from threadline.server.user_ids import UserIdPseudonyms
from threadline.settings import ServerSettings

TITLE: Final = "Threadline"


def failed_deliveries(dispatcher: Dispatcher) -> list[DeliveryFailure]:
    """Each receiver whose last send failed (no success since), with its error."""
    return [
        DeliveryFailure(receiver=r.name, error=r.last_error, at_ns=r.last_error_ns)
        for r in dispatcher.status().receivers
        if r.last_error_ns is not None and not r.healthy
    ]


def create_app(
    settings: ServerSettings,
    store: Store,
    *,
    tokens: TokenTable | None = None,
    deliver: Deliver | None = None,
    delivery_failures: DeliveryFailures | None = None,
) -> FastAPI:
    """The whole server on ``store``; ``tokens`` already loaded from ``settings`` are reused.

    ``deliver`` receives the alert notices (see ``alerting.evaluator``); None hands them
    to the receivers set in ``settings`` (``alerting.delivery``). ``delivery_failures``
    lists failed sends for ``/api/alerts``; None lists the receivers' last errors.
    """
    openapi_url = f"{API_PREFIX}/openapi.json"
    docs_url = f"{API_PREFIX}/docs"
    app = FastAPI(
        title=TITLE,
        summary="Traces and user journeys across Python services.",
        openapi_url=openapi_url,
        # FastAPI's own docs page loads Swagger UI from a CDN; ours ships in the package.
        docs_url=None,
        redoc_url=None,
    )
    after_write = install_sampling(app, settings, store)
    # Checked now: starlette builds its middleware only when the first request comes.
    check_gate_settings(settings.read_concurrency, settings.read_queue)
    # Heavy API reads run a few at a time behind the read gate; the schema, its docs
    # and the sampling rules services poll are cheap and stay outside it.
    app.add_middleware(
        ReadGate,
        concurrency=settings.read_concurrency,
        queue=settings.read_queue,
        exempt_paths=(openapi_url, docs_url, f"{API_PREFIX}/sampling"),
    )
    # Every request passes access control first (see threadline.server.auth); added
    # last, it is the outermost layer, so a refused request never takes a read slot.
    install_access_control(app, settings, tokens)
    future_starts = FutureStarts()
    counters = IngestCounters()
    # Decoding worker processes (``workers``) start with the app and stop with it.
    decoding = span_decoding(settings)
    app.state.span_decoding = decoding
    app.router.add_event_handler("startup", decoding.start)
    app.router.add_event_handler("shutdown", decoding.close)
    app.include_router(
        build_ingest_router(
            store,
            settings,
            after_write,
            rate_key=client_key,
            future_starts=future_starts,
            counters=counters,
            decoding=decoding,
        )
    )
    app.include_router(build_health_router(store, future_starts))
    # Alert receivers: the evaluator hands its notices to ``app.state.alert_dispatcher``.
    dispatcher = Dispatcher.from_settings(settings)
    app.state.alert_dispatcher = dispatcher
    app.router.add_event_handler("startup", dispatcher.start)
    app.router.add_event_handler("shutdown", dispatcher.stop)
    # More families join /metrics through ``app.state.metrics.add_source``.
    metrics = build_registry(store, counters, future_starts, dispatcher)
    app.state.metrics = metrics
    app.include_router(build_metrics_router(metrics))
    # Before the API's routes: their catch-all answers any other path under /api.
    app.include_router(build_api_docs_router(docs_url, openapi_url, TITLE))
    app.include_router(build_alert_delivery_router(dispatcher), prefix=API_PREFIX)
    keys = ErasureKeys(settings.user_id_key, settings.redaction_hash_key)
    app.include_router(build_erase_router(store, keys), prefix=API_PREFIX)
    install_alerting(
        app,
        settings,
        store,
        deliver=deliver or dispatcher.notify,
        delivery_failures=delivery_failures or (lambda: failed_deliveries(dispatcher)),
    )
    install_drills(
        app,
        settings,
        store,
        deliver=deliver or dispatcher.notify,
        may_run=app.state.evaluator_lease.held,
    )
    query = QueryService(store, user_ids=UserIdPseudonyms(settings.user_id_key))
    app.include_router(
        build_journey_router(store, query, open_funnels(store, settings.db)), prefix=API_PREFIX
    )
    app.include_router(
        build_api_router(query, trace_page_spans=settings.trace_page_spans), prefix=API_PREFIX
    )
    app.include_router(build_ui_router(query))

    @app.exception_handler(StoreUnsupported)
    async def _answer_unsupported(_: Request, exc: StoreUnsupported) -> JSONResponse:
        # A view this store does not offer yet: 501 Not Implemented, saying which.
        return JSONResponse({"error": str(exc)}, 501)

    @app.exception_handler(ThreadlineError)
    async def _answer_error(_: Request, exc: ThreadlineError) -> JSONResponse:
        body = {"error": exc.message, **exc.details}
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    return app

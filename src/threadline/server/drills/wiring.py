"""Connect scheduled drills to the app: ``/api/probes``, the scheduler's threads, and
their alerts through the receivers the SLO alerts use."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from threadline.conventions import API_PREFIX
from threadline.probing.definitions import ProbeDefinitionError, ProbeDocument
from threadline.server.alerting.delivery.receivers import external_url_of
from threadline.server.alerting.evaluator import Deliver
from threadline.server.drills.alerts import DrillAlerts
from threadline.server.drills.probe_document import default_probes_path, open_probes
from threadline.server.drills.routes import build_probe_router
from threadline.server.drills.scheduler import DrillScheduler
from threadline.server.storage.base import Store
from threadline.settings import ConfigError, ServerSettings


def install_drills(
    app: FastAPI,
    settings: ServerSettings,
    store: Store,
    *,
    deliver: Deliver,
    may_run: Callable[[], bool] = lambda: True,
) -> DrillScheduler:
    """Mount ``/api/probes``; run the probes while the app runs and ``may_run`` says so
    (this process holds the evaluator's lease).

    A bad probe document or setting raises :class:`ConfigError` naming it, so the server
    does not start.
    """
    try:
        probes = open_probes(store, default_probes_path(settings.db, settings.probes_file))
    except ProbeDefinitionError as exc:
        raise ConfigError(f"probes: {exc}") from exc
    base_url = external_url_of(settings)

    def trace_url(trace_id: str) -> str:
        return f"{base_url}/trace/{trace_id}"

    alerts = DrillAlerts(store, deliver, base_url=base_url)

    def current() -> ProbeDocument:
        return probes.get().value

    try:
        scheduler = DrillScheduler(
            store,
            current,
            trace_url=trace_url,
            on_result=alerts.observe,
            workers=settings.drill_concurrency,
            keep=settings.drill_history,
            on_document=alerts.sweep,
            may_run=may_run,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    app.include_router(
        build_probe_router(probes, store, running=scheduler.running, trace_url=trace_url),
        prefix=API_PREFIX,
    )
    app.router.add_event_handler("startup", scheduler.start)
    app.router.add_event_handler("shutdown", scheduler.stop)
    app.state.drill_scheduler = scheduler
    return scheduler

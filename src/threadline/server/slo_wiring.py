"""Connect SLOs and alerts to the app: the routes, and the evaluator's thread.

``deliver`` is where receivers plug in (Alertmanager, webhooks, Slack): it gets the
notices of alerts that fired or resolved, on the evaluator's thread; the default
logs them. ``delivery_failures`` lists what the receivers failed to send, for
``/api/alerts``.

The evaluator's lease (``alerting.schedule.evaluator_lease``) is on
``app.state.evaluator_lease``: the scheduled drills run where it is held, and
``/api/alerts`` says who holds it.
"""

from __future__ import annotations

import time

from fastapi import FastAPI

from threadline.conventions import API_PREFIX
from threadline.server.alerting.delivery.receivers import external_url_of
from threadline.server.alerting.evaluator import (
    Deliver,
    Evaluator,
    EvaluatorConfig,
    log_notices,
)
from threadline.server.alerting.schedule import EvaluationSchedule, evaluator_lease
from threadline.server.alerting.slo_store import default_slos_path, open_slos
from threadline.server.api.slo_routes import DeliveryFailures, build_slo_router
from threadline.server.lease import new_holder_id
from threadline.server.metrics.slo_families import slo_families
from threadline.server.storage.base import Store
from threadline.settings import ConfigError, ServerSettings
from threadline.slos import SloError
from threadline.store_url import parse as parse_store_url


def install_alerting(
    app: FastAPI,
    settings: ServerSettings,
    store: Store,
    *,
    deliver: Deliver | None = None,
    delivery_failures: DeliveryFailures = lambda: (),
) -> Evaluator:
    """Mount ``/api/slos`` and ``/api/alerts``; evaluate while the app runs.

    A bad SLO file or setting raises :class:`ConfigError` naming it, so the server
    does not start.
    """
    try:
        slos = open_slos(store, default_slos_path(settings.db, settings.slos_file))
    except SloError as exc:
        raise ConfigError(f"slos: {exc}") from exc
    for name, value in (
        ("slo_min_events", settings.slo_min_events),
        ("slo_alert_pending_s", settings.slo_alert_pending_s),
    ):
        if value < 0:
            raise ConfigError(f"{name} must be at least 0, got {value}")
    if not 0.0 < settings.slo_retry_share < 1.0:
        raise ConfigError(
            f"slo_retry_share must be between 0 and 1, got {settings.slo_retry_share}"
        )
    config = EvaluatorConfig(
        min_events=settings.slo_min_events,
        pending_ns=int(settings.slo_alert_pending_s * 1e9),
        retry_share=settings.slo_retry_share,
        base_url=external_url_of(settings),
    )
    evaluator = Evaluator(
        store, lambda: slos.get().value, config=config, deliver=deliver or log_notices
    )
    interval_s = settings.slo_evaluation_interval_s
    try:
        lease = evaluator_lease(
            store,
            interval_s,
            holder=new_holder_id(),
            clock=time.time_ns,
            # An embedded store is opened by this process alone: a stored holder is a
            # predecessor that was killed, and waiting out its lease would delay alerts.
            sole=parse_store_url(settings.store, default_db=settings.db).backend != "clickhouse",
        )
        schedule = EvaluationSchedule(evaluator, interval_s, lease=lease)
    except ValueError as exc:
        raise ConfigError(
            f"slo_evaluation_interval_s must be greater than 0, got {interval_s}"
        ) from exc
    app.include_router(
        build_slo_router(
            slos,
            evaluator,
            clock=time.time_ns,
            delivery_failures=delivery_failures,
            lease=lease,
        ),
        prefix=API_PREFIX,
    )
    app.router.add_event_handler("startup", schedule.start)
    app.router.add_event_handler("shutdown", schedule.stop)
    app.state.slo_evaluator = evaluator
    app.state.evaluator_lease = lease
    metrics = getattr(app.state, "metrics", None)
    if metrics is not None:
        metrics.add_source(
            "slos",
            lambda: slo_families(evaluator.last_reports(), evaluator.store.alert_states()),
        )
    return evaluator

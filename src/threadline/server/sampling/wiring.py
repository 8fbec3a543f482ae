"""Connect sampling to the app: the rule routes, and the tail sampler's thread and hook."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI

from threadline.conventions import API_PREFIX
from threadline.server.api.sampling_routes import build_sampling_router
from threadline.server.batch import SpanBatch
from threadline.server.sampling.rule_store import RuleStore, default_rules_path
from threadline.server.sampling.tail import TailConfig, TailSampler
from threadline.server.storage.base import Store
from threadline.settings import ConfigError, ServerSettings

logger = logging.getLogger(__name__)


def install_sampling(
    app: FastAPI, settings: ServerSettings, store: Store
) -> Callable[[SpanBatch], None] | None:
    """Mount ``/api/sampling``; with tail sampling on, return the hook ingest calls per batch.

    The tail sampler's thread starts and stops with the app. A bad rules file or tail
    setting raises :class:`ConfigError` naming it, so the server does not start.
    """
    try:
        rules = RuleStore.open(store, default_rules_path(settings.db, settings.sampling_rules_file))
        tail = (
            TailSampler(store, lambda: rules.get().value, TailConfig.from_settings(settings))
            if settings.tail_sampling
            else None
        )
    except ValueError as exc:  # RuleError and TailConfig's checks are ValueErrors
        raise ConfigError(f"sampling: {exc}") from exc
    app.include_router(build_sampling_router(rules, tail), prefix=API_PREFIX)
    if tail is None:
        return None
    app.router.add_event_handler("startup", tail.start)
    app.router.add_event_handler("shutdown", tail.stop)
    return _never_raising(tail.observe)


def _never_raising(observe: Callable[[SpanBatch], None]) -> Callable[[SpanBatch], None]:
    """The batch is already durable: a failure here must not turn its 200 into an error."""

    def hook(batch: SpanBatch) -> None:
        try:
            observe(batch)
        except Exception:
            logger.exception("tail sampling could not observe a batch; its traces are kept")

    return hook

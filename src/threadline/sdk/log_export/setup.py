"""Installing the log handler for ``configure(logs=True)``, and removing it at shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

from threadline.conventions import SERVICE_NAME
from threadline.sdk.export import pipeline
from threadline.sdk.export.retry import RetryPolicy
from threadline.sdk.log_export.handler import LogExportHandler
from threadline.settings import ConfigError, SdkSettings

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_lock = threading.Lock()
_handler: LogExportHandler | None = None


def level_of(settings: SdkSettings) -> int:
    """The ``logging`` level ``logs_level`` names; ConfigError naming the key otherwise."""
    level = LEVELS.get(settings.logs_level.strip().lower())
    if level is None:
        raise ConfigError(f"logs_level: {settings.logs_level!r} is not one of {', '.join(LEVELS)}")
    return level


def install_logs(settings: SdkSettings, pseudonymize_user_id: Callable[[str], str]) -> None:
    """Add the export handler to the root logger once, when ``settings.logs`` asks."""
    global _handler
    if not settings.logs or not settings.enabled:
        return
    level = level_of(settings)
    with _lock:
        if _handler is not None:
            return
        _handler = LogExportHandler(
            pipeline.transport_config(settings),
            level=level,
            queue_size=settings.logs_queue_size,
            batch_size=settings.export_batch_size,
            delay_s=settings.export_delay_ms / 1000,
            retry=RetryPolicy(
                deadline_s=settings.retry_deadline_s,
                initial_backoff_s=settings.retry_backoff_s,
            ),
            shutdown_timeout_s=settings.shutdown_timeout_s,
            resource={
                SERVICE_NAME: settings.service_name,
                **pipeline.resource_attributes(settings),
            },
            pseudonymize_user_id=pseudonymize_user_id,
            redactor=pipeline.export_redactor(settings),
        )
        pipeline.report_log_stats(_handler.stats)
        root = logging.getLogger()
        root.addHandler(_handler)
        # The root logger's own level (WARNING unless the host set one) would stop
        # records below it before any handler sees them.
        if root.level > level:
            root.setLevel(level)


def active_handler() -> LogExportHandler | None:
    return _handler


def shutdown_logs() -> None:
    """Send what is queued and remove the handler; idempotent."""
    global _handler
    with _lock:
        handler, _handler = _handler, None
    if handler is not None:
        pipeline.report_log_stats(None)
        logging.getLogger().removeHandler(handler)
        handler.stop()

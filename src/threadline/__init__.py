"""Threadline: follow one user's requests and journeys through a fleet of Python services.

In a service::

    import threadline

    threadline.configure(service_name="checkout")
    threadline.instrument(app)                 # Flask or FastAPI, plus requests/httpx

    with threadline.journey(user_id=user.id):  # every span below, in every service
        ...

The SDK names are loaded on first use rather than at import: ``threadline.server``
and the CLI live in this package too, and importing them must not load the
OpenTelemetry SDK pipeline (nor the settings loader, which a read command of the
CLI does not need).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from threadline.sdk.concurrency import context_executor, wrap
    from threadline.sdk.export.pipeline import stats
    from threadline.sdk.instrument import instrument
    from threadline.sdk.journey import journey
    from threadline.sdk.setup import configure, shutdown
    from threadline.settings import ConfigError

__all__ = [
    "ConfigError",
    "configure",
    "context_executor",
    "instrument",
    "journey",
    "shutdown",
    "stats",
    "wrap",
]

_LAZY: Final[dict[str, str]] = {
    "ConfigError": "threadline.settings",
    "configure": "threadline.sdk.setup",
    "shutdown": "threadline.sdk.setup",
    "journey": "threadline.sdk.journey",
    "instrument": "threadline.sdk.instrument",
    "context_executor": "threadline.sdk.concurrency",
    "wrap": "threadline.sdk.concurrency",
    "stats": "threadline.sdk.export.pipeline",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'threadline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

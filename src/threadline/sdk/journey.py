"""``journey()``: put a user's journey keys into W3C baggage for a block or a function.

Inside the block every span started, in this service and (through the ``baggage``
header) in every service called from it, carries ``session.id``, ``user.id`` and
``journey.id`` (and ``journey.synthetic=true`` for test traffic). The keys are merged
into whatever baggage is already current, and the previous context is restored on exit.
``user.id`` is pseudonymised before it enters the baggage, so the raw id never leaves
the process (unless configured otherwise).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import Token
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import baggage, context, trace
from opentelemetry.context import Context

from threadline.conventions import (
    JOURNEY_ID,
    JOURNEY_KEYS,
    JOURNEY_SYNTHETIC,
    SESSION_ID,
    SYNTHETIC_TRUE,
    USER_ID,
)
from threadline.sdk import setup
from threadline.sdk.guard import report_internal_error

P = ParamSpec("P")
R = TypeVar("R")


class Journey:
    """Context manager (sync and async) and decorator made by :func:`journey`.

    One ``Journey`` can decorate many functions and be entered many times; each
    entry restores the context it found on its own exit.
    """

    __slots__ = ("_keys", "_tokens")

    def __init__(self, keys: dict[str, str]) -> None:
        self._keys = keys
        self._tokens: list[Token[Context] | None] = []

    def __enter__(self) -> Journey:
        self._tokens.append(_attach(self._keys))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _detach(self._tokens.pop())

    async def __aenter__(self) -> Journey:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            # A generator runs in its caller's context between yields; a context kept
            # attached across a yield would leak into the caller.
            raise TypeError(
                "journey() decorates functions and coroutine functions, not generators; "
                "use `with journey(...)` inside the generator instead"
            )
        keys = self._keys
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                token = _attach(keys)
                try:
                    return await function(*args, **kwargs)
                finally:
                    _detach(token)

            return cast(Callable[P, R], run_async)

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            token = _attach(keys)
            try:
                return function(*args, **kwargs)
            finally:
                _detach(token)

        return run


def journey(
    session_id: str | None = None,
    user_id: str | None = None,
    journey_id: str | None = None,
    *,
    synthetic: bool = False,
) -> Journey:
    """Carry these journey keys in baggage (and on spans) inside a block or function.

    Keys left as None keep whatever value the current baggage already has.
    ``synthetic=True`` marks the journey as test traffic (``journey.synthetic=true``):
    always sampled, in every service it reaches, and left out of the server's RED,
    SLO and baseline figures. ``False`` never clears a mark set upstream.
    """
    keys: dict[str, str] = {}
    for key, value in ((SESSION_ID, session_id), (USER_ID, user_id), (JOURNEY_ID, journey_id)):
        # Accept ints and the like rather than raise into user code; drop empty values.
        text = value if isinstance(value, str) else ("" if value is None else str(value))
        if text:
            keys[key] = text
    if synthetic:
        keys[JOURNEY_SYNTHETIC] = SYNTHETIC_TRUE
    return Journey(keys)


def current_journey() -> dict[str, str]:
    """The journey keys present in the current baggage (for logs and tests)."""
    entries = baggage.get_all()
    return {key: str(entries[key]) for key in (*JOURNEY_KEYS, JOURNEY_SYNTHETIC) if key in entries}


def _attach(keys: dict[str, str]) -> Token[Context] | None:
    if not keys:
        return None
    try:
        resolved = dict(keys)
        if USER_ID in resolved:
            # Resolved at entry, not at decoration: configure() may run after import.
            resolved[USER_ID] = setup.active_pseudonymizer()(resolved[USER_ID])
        ctx = context.get_current()
        for key, value in resolved.items():
            ctx = baggage.set_baggage(key, value, ctx)
        token = context.attach(ctx)
    except Exception:
        report_internal_error("journey()")
        return None
    try:
        span = trace.get_current_span(ctx)
        if span.is_recording():
            span.set_attributes(resolved)
    except Exception:
        report_internal_error("journey() stamping the current span")
    return token


def _detach(token: Token[Context] | None) -> None:
    if token is not None:
        context.detach(token)

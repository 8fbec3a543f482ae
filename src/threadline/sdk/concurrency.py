"""Context across threads: work handed to a pool or a thread keeps its submitter's context.

``contextvars`` follow asyncio tasks on their own (``create_task``, ``gather`` and
``TaskGroup`` copy the context), but a thread starts with an empty context and
``loop.run_in_executor`` does not copy it. The trace and the journey baggage live in
that context, so without help a span started in a pool thread begins a new trace
without the journey.

- :func:`wrap` binds a callable to the context current *now* (the submitter's);
- :func:`context_executor` is a ``ThreadPoolExecutor`` whose ``submit`` (and so
  ``map`` and ``loop.run_in_executor``) wraps every work item that way;
- :func:`context_thread` is a ``threading.Thread`` whose target runs in the context
  of the code that created it.

Each call runs in its own copy of the context, so a work item that sets a context
variable does not leak it into another work item or back into the submitter.
(``threadline.instrument()`` also turns on OpenTelemetry's ``threading``
instrumentation when installed, which carries the OpenTelemetry context, trace and
baggage, into ``Thread`` and ``ThreadPoolExecutor`` globally.)
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def wrap(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` bound to the current context; each call runs in a fresh copy of it."""
    captured = contextvars.copy_context()

    @functools.wraps(function)
    def run_in_captured(*args: P.args, **kwargs: P.kwargs) -> R:
        # A copy per call: the same wrapped function may run in two threads at once,
        # and one Context object cannot be entered twice concurrently.
        return captured.copy().run(function, *args, **kwargs)

    return run_in_captured


class ContextExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that runs each work item in the context it was submitted from."""

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        captured = contextvars.copy_context()

        def run_in_submitter_context() -> R:
            return captured.run(fn, *args, **kwargs)

        return super().submit(run_in_submitter_context)


def context_executor(
    max_workers: int | None = None, thread_name_prefix: str = "", **options: Any
) -> ContextExecutor:
    """A thread pool that carries the submitter's trace and journey into every work item.

    Use it with ``loop.run_in_executor(executor, fn)`` or as the loop's default
    executor (``loop.set_default_executor(threadline.context_executor())``).
    """
    return ContextExecutor(max_workers, thread_name_prefix, **options)


def context_thread(
    target: Callable[..., object],
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    **thread_options: Any,
) -> threading.Thread:
    """A ``threading.Thread`` whose ``target`` runs in the context current at this call."""
    return threading.Thread(
        target=wrap(target), args=tuple(args), kwargs=dict(kwargs or {}), **thread_options
    )

"""Scenario: the process forks while one of Threadline's threads is importing a module
its requests need; the child must still export.

A pre-forking server (gunicorn --preload) forks its workers right after the app called
``configure()``, while the sampling-rule poller makes its first request. That request
resolves the endpoint's host, and ``getaddrinfo`` imports the "idna" codec on first
use. A fork in the middle of that import leaves the child with a half-imported module.

The timing is forced instead of hoped for: an import hook holds any thread other than
the main one at the start of executing ``encodings.idna`` (the real module, loaded by
the real loader once released) and tells the main thread, which then forks. If the
main thread imported the codec first (nothing can be caught half-way), it forks
straight away.

In the child: one span, a flush, and the exit status says whether the flush finished.
The parent prints ``{"child_pid", "child_flushed", "caught_mid_import"}``.
"""

import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

HOLD_S = 10.0
FLUSH_TIMEOUT_MS = 15_000  # generous: a busy machine must not fail the test
MODULE = "encodings.idna"


class _HoldImport(importlib.abc.MetaPathFinder):
    """Holds the first non-main thread that imports ``MODULE`` until ``released``."""

    def __init__(self) -> None:
        self.caught = threading.Event()
        self.released = threading.Event()
        self.imported_on_main = False

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # once: later imports take the ordinary path
        if threading.current_thread() is threading.main_thread():
            self.imported_on_main = True
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        assert spec is not None
        real = spec.loader
        assert real is not None
        hook = self

        class _Held(importlib.abc.Loader):
            def create_module(self, spec: ModuleSpec) -> ModuleType | None:
                return real.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                hook.caught.set()
                hook.released.wait(HOLD_S)
                real.exec_module(module)

        spec.loader = _Held()
        return spec


hook = _HoldImport()
sys.meta_path.insert(0, hook)

from opentelemetry import trace  # noqa: E402

import threadline  # noqa: E402

threadline.configure(service_name="fork-mid-import", export_delay_ms=50, stats_interval_s=0)
caught = False
if not hook.imported_on_main:
    caught = hook.caught.wait(HOLD_S)

pid = os.fork()
if pid == 0:
    with trace.get_tracer("scenario").start_as_current_span("from-child"):
        pass
    flushed = trace.get_tracer_provider().force_flush(FLUSH_TIMEOUT_MS)  # type: ignore[attr-defined]
    os._exit(0 if flushed else 1)

hook.released.set()
_, status = os.waitpid(pid, 0)
print(
    json.dumps(
        {
            "child_pid": pid,
            "child_flushed": os.waitstatus_to_exitcode(status) == 0,
            "caught_mid_import": caught,
        }
    )
)

"""Running per-process set-up again in a forked child.

A pre-forking server (gunicorn ``--preload``, uWSGI, multiprocessing) copies the
parent's memory but not its threads: queues, locks and worker threads of the
export pipeline, the log handler and the rule poller must be made anew in each
child. Each registers its method here; the hook holds it weakly, so registering
never keeps a shut-down object alive (``os.register_at_fork`` hooks cannot be
removed).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable


def call_in_forked_children(method: Callable[[], object]) -> None:
    """Call the bound ``method`` in every child forked from now on, while its object lives."""
    if not hasattr(os, "register_at_fork"):  # not on this platform: nothing forks
        return
    held = weakref.WeakMethod(method)

    def _in_child() -> None:
        alive = held()
        if alive is not None:
            alive()

    os.register_at_fork(after_in_child=_in_child)

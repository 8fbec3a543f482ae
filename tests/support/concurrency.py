"""How many calls of a function run at once, for tests of what runs one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
Q = ParamSpec("Q")
S = TypeVar("S")


class AtOnce(Generic[P, R]):
    """``call`` wrapped to count the most calls running at once (``most``); ``also``
    wraps another function into the same count.

    Each call first sleeps ``pause_s``, which lets other threads in (as a decoder's
    copies do), so calls that may overlap do.
    """

    def __init__(self, call: Callable[P, R], pause_s: float = 0.02) -> None:
        self._call = call
        self._pause_s = pause_s
        self._lock = threading.Lock()
        self._running = 0
        self.most = 0

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._counted(self._call, *args, **kwargs)

    def also(self, other: Callable[Q, S]) -> Callable[Q, S]:
        """``other``, counted with ``call``: the most of either running at once."""

        def counted(*args: Q.args, **kwargs: Q.kwargs) -> S:
            return self._counted(other, *args, **kwargs)

        return counted

    def _counted(self, call: Callable[Q, S], *args: Q.args, **kwargs: Q.kwargs) -> S:
        with self._lock:
            self._running += 1
            self.most = max(self.most, self._running)
        try:
            time.sleep(self._pause_s)
            return call(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1

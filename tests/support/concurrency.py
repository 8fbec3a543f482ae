"""How many calls of a function run at once, for tests of what runs one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class AtOnce(Generic[P, R]):
    """``call`` wrapped to count the most calls running at once (``most``).

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
        with self._lock:
            self._running += 1
            self.most = max(self.most, self._running)
        try:
            time.sleep(self._pause_s)
            return self._call(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1

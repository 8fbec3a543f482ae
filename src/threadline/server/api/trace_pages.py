"""A trace view in pages: one assembly per trace however many pages and viewers ask.

A trace of a hundred thousand spans takes seconds to read and assemble and ~40 MB
as one JSON answer, and a dozen people opening it at once each paid all of it. Here
the answer of ``GET /api/traces/{id}`` carries at most ``trace_page_spans`` spans
(``offset``/``limit``, with ``span_count`` and ``next_offset``), in the tree's
depth-first order so each page continues the waterfall where the last one stopped.

Pages need the whole assembled tree (depths, self times and skew fix-ups depend on
every span), so the assembled view of a large trace is kept for a short while in
``TraceViews``: the next page, or another viewer, is served from it. Concurrent
requests for the same trace wait for one assembly instead of each starting their own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from threadline.server.errors import InvalidParameter
from threadline.server.query import TraceView

# Large views kept at once: each is up to a few hundred MB for the largest traces,
# and a viewer pages through one trace at a time.
MAX_KEPT_VIEWS: Final = 2
# How long a kept view serves pages. Long enough to scroll a waterfall page by page;
# short enough that spans still arriving for the trace show up on the next visit.
KEPT_VIEW_S: Final = 60.0
# An offset or limit longer than this is no span count of any trace a store holds.
MAX_DIGITS: Final = 12


@dataclass(frozen=True, slots=True)
class Page:
    """Which spans of the view one answer carries: ``[offset, end)`` of ``total``."""

    offset: int
    end: int
    total: int

    @property
    def next_offset(self) -> int | None:
        return self.end if self.end < self.total else None


def page_of(total: int, offset: str | None, limit: str | None, max_limit: int) -> Page:
    """The page at ``offset`` (default 0) of at most ``limit`` spans (default and cap
    ``max_limit``), from the query's text."""
    start = _whole_number("offset", offset, 0)
    size = _whole_number("limit", limit, max_limit)
    if not 1 <= size <= max_limit:
        raise InvalidParameter(
            "limit", f"{size} is not from 1 to {max_limit} spans (trace_page_spans)"
        )
    if start > total:
        raise InvalidParameter("offset", f"{start} is past the trace's {total} spans")
    return Page(offset=start, end=min(total, start + size), total=total)


def _whole_number(name: str, text: str | None, default: int) -> int:
    if not text:
        return default
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > MAX_DIGITS:
        raise InvalidParameter(name, f"{text[:20]!r} is not a whole number")
    return int(stripped)


class TraceViews:
    """Assembled views of large traces, kept briefly and built once per trace at a time.

    ``assemble`` builds a view; a view with more than ``keep_above`` spans is kept for
    ``KEPT_VIEW_S`` seconds (at most ``MAX_KEPT_VIEWS``, least recently used leaves).
    """

    def __init__(
        self,
        assemble: Callable[[str], TraceView],
        *,
        keep_above: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._assemble = assemble
        self._keep_above = keep_above
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[TraceView, float]] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}

    def get(self, trace_id: str) -> TraceView:
        key = trace_id.strip().lower()
        kept = self._kept_view(key)
        if kept is not None:
            return kept
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            # Whoever held the lock before us may have built it meanwhile.
            kept = self._kept_view(key)
            if kept is not None:
                return kept
            try:
                view = self._assemble(trace_id)
                if len(view.tree.nodes) > self._keep_above:
                    self._keep(key, view)
            finally:
                # Only once the view is kept: a request arriving now finds it.
                with self._lock:
                    self._building.pop(key, None)
            return view

    def _keep(self, key: str, view: TraceView) -> None:
        with self._lock:
            self._kept[key] = (view, self._clock() + KEPT_VIEW_S)
            self._kept.move_to_end(key)
            while len(self._kept) > MAX_KEPT_VIEWS:
                self._kept.popitem(last=False)

    def _kept_view(self, key: str) -> TraceView | None:
        with self._lock:
            entry = self._kept.get(key)
            if entry is None:
                return None
            view, until = entry
            if self._clock() >= until:
                del self._kept[key]
                return None
            self._kept.move_to_end(key)
            return view

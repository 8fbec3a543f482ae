"""The journey keys a span carries, read from the parent context's baggage at start.

The same rule as the export processor's (``sdk/export/processor.py``): the keys are
kept with the span and written as attributes when it is encoded, or (``stamp``) set as
span attributes at once, for in-process readers. Distinct baggage values are few at a
time and each has many spans, so the pseudonymised tuple is cached, within a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from threadline.conventions import JOURNEY_ID, JOURNEY_SYNTHETIC, SESSION_ID, USER_ID
from threadline.sdk.export.compact import Journey

# Distinct (session, user, journey) baggage values whose attributes are kept ready.
JOURNEY_CACHE_SIZE: Final = 4096


class JourneyKeys:
    """``of(baggage)``: the journey attributes for those baggage entries, or None."""

    def __init__(self, pseudonymize_user_id: Callable[[str], str]) -> None:
        self._pseudonymize = pseudonymize_user_id
        self._cache: dict[tuple[object, object, object, object], Journey | None] = {}
        self._last: tuple[object, Journey | None] = (None, None)

    def of(self, entries: Mapping[str, object]) -> Journey | None:
        # Baggage is copied on change, never changed in place: every span started
        # inside one journey() sees the same mapping, so the last one answers at once.
        # One tuple, read and replaced whole, so threads never see a half update.
        last = self._last
        if last[0] is entries:
            return last[1]
        key = (
            entries.get(SESSION_ID),
            entries.get(USER_ID),
            entries.get(JOURNEY_ID),
            entries.get(JOURNEY_SYNTHETIC),
        )
        try:
            found = self._cache[key]
        except KeyError:
            found = self._cached(key)
        self._last = (entries, found)
        return found

    def _cached(self, key: tuple[object, object, object, object]) -> Journey | None:
        session_id, user_id, journey_id, synthetic = key
        journey: list[tuple[str, str]] = []
        if session_id is not None:
            journey.append((SESSION_ID, str(session_id)))
        if user_id is not None:
            journey.append((USER_ID, self._pseudonymize(str(user_id))))
        if journey_id is not None:
            journey.append((JOURNEY_ID, str(journey_id)))
        if synthetic is not None:
            journey.append((JOURNEY_SYNTHETIC, str(synthetic)))
        found = tuple(journey) or None
        if len(self._cache) >= JOURNEY_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = found
        return found

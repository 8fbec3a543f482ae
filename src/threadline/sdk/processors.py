"""Journey stamping: copy the journey keys from W3C baggage onto every span as it starts.

The journey travels as baggage (``session.id``, ``user.id``, ``journey.id``); stamping
the same keys on each span lets the server group a user's spans without joins. This
runs for every span, so it does the least it can: one baggage read, and for each key
present one ``set_attribute``. A ``user.id`` that arrived in clear text from an
upstream service is pseudonymised here too (the pseudonymiser caches, so HMAC runs
once per user, and passes ids that are already pseudonyms through).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor

from threadline.conventions import JOURNEY_ID, JOURNEY_SYNTHETIC, SESSION_ID, USER_ID
from threadline.sdk.guard import report_internal_error

# Bound once: this module's code runs for every span the service starts.
_baggage_of: Final = baggage.get_all


class JourneyStampingProcessor(SpanProcessor):
    """On span start, stamp the journey keys found in the parent context's baggage."""

    def __init__(self, pseudonymize_user_id: Callable[[str], str]) -> None:
        self._pseudonymize_user_id = pseudonymize_user_id

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            entries = _baggage_of(parent_context)
            if not entries:
                return
            # Unrolled over the keys: this is the per-span path.
            session_id = entries.get(SESSION_ID)
            if session_id is not None:
                span.set_attribute(SESSION_ID, str(session_id))
            user_id = entries.get(USER_ID)
            if user_id is not None:
                span.set_attribute(USER_ID, self._pseudonymize_user_id(str(user_id)))
            journey_id = entries.get(JOURNEY_ID)
            if journey_id is not None:
                span.set_attribute(JOURNEY_ID, str(journey_id))
            synthetic = entries.get(JOURNEY_SYNTHETIC)
            if synthetic is not None:
                span.set_attribute(JOURNEY_SYNTHETIC, str(synthetic))
        except Exception:
            report_internal_error("journey stamping")

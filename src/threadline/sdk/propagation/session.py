"""The session a request arrives with when no baggage names one: header, then cookie.

A journey's first hop is usually a browser, which sends no ``baggage``; the session
arrives as the ``X-Session-Id`` header or the ``session_id`` cookie (names from
settings). Reading it while the incoming context is *extracted* puts ``session.id``
in the baggage of the context every server instrumentation starts its server span
with, so the head sampler deciding that span (``by = "journey"``) and the journey
stamping already see it, in every framework alike: WSGI, ASGI, Flask, FastAPI,
Django and aiohttp all extract through the global propagator. Broker consumers extract
through it too, so a message header of that name is read the same way.

Baggage that arrived from an upstream service always wins.

The ``X-Threadline-Synthetic: true`` header (``conventions.SYNTHETIC_HEADER``) is read
the same way: it puts ``journey.synthetic=true`` in the baggage, so test traffic sent
by a tool that speaks no baggage (curl, a monitor) is marked from its first span on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import CarrierT, Getter

from threadline.conventions import (
    JOURNEY_SYNTHETIC,
    SESSION_ID,
    SYNTHETIC_HEADER,
    SYNTHETIC_TRUE,
)
from threadline.sdk.propagation.fields import field_values

# Longer values are not session ids; refusing them keeps baggage (sent on every
# outgoing request) small.
MAX_SESSION_ID_CHARS: Final = 128
COOKIE: Final = "cookie"
_SYNTHETIC_FIELD: Final = SYNTHETIC_HEADER.lower()
_TRUE_VALUES: Final = frozenset({"1", "true", "yes", "on"})


def clean_session_id(raw: str | None) -> str | None:
    """The session id if ``raw`` is a usable one: non-empty, printable, not too long."""
    if raw is None:
        return None
    value = raw.strip()
    if not value or len(value) > MAX_SESSION_ID_CHARS or not value.isprintable():
        return None
    return value


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    """Value of cookie ``name`` in a ``Cookie`` header, tolerating malformed neighbours."""
    if not cookie_header:
        return None
    for pair in cookie_header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


@dataclass(frozen=True, slots=True)
class InboundSession:
    """Where a request carries its session: a header name and a cookie name."""

    header: str
    cookie: str

    def session_id(self, carrier: CarrierT, getter: Getter[CarrierT]) -> str | None:
        """The session id from the header (its first line), else from the cookie."""
        # Header names are case-insensitive; carriers of HTTP servers look them up so,
        # and broker carriers (integrations/codec.py) hold them lower-cased.
        header = field_values(getter, carrier, self.header.lower())
        session_id = clean_session_id(header[0]) if header else None
        if session_id is not None:
            return session_id
        cookies = field_values(getter, carrier, COOKIE)
        if not cookies:
            return None
        # HTTP/2 may split cookies over several field lines.
        return clean_session_id(cookie_value("; ".join(cookies), self.cookie))

    def add_to(self, context: Context, carrier: CarrierT, getter: Getter[CarrierT]) -> Context:
        """``context`` with ``session.id`` baggage from the carrier, unless it has one,
        and ``journey.synthetic=true`` when the carrier asks for it."""
        context = mark_synthetic(context, carrier, getter)
        if baggage.get_baggage(SESSION_ID, context) is not None:
            return context
        session_id = self.session_id(carrier, getter)
        if session_id is None:
            return context
        return baggage.set_baggage(SESSION_ID, session_id, context)


def mark_synthetic(context: Context, carrier: CarrierT, getter: Getter[CarrierT]) -> Context:
    """``context`` with ``journey.synthetic=true`` baggage if the synthetic header is true.

    A false or absent header changes nothing: it never clears a mark set upstream.
    """
    if baggage.get_baggage(JOURNEY_SYNTHETIC, context) is not None:
        return context
    values = field_values(getter, carrier, _SYNTHETIC_FIELD)
    if not values or values[0].strip().lower() not in _TRUE_VALUES:
        return context
    return baggage.set_baggage(JOURNEY_SYNTHETIC, SYNTHETIC_TRUE, context)

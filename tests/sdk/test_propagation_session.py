"""The session a request arrives with, read while the incoming context is extracted.

Browsers send no baggage: the session arrives as a header or a cookie. The propagator
``configure()`` installs turns it into ``session.id`` baggage of the extracted context,
the context every server instrumentation starts its server span with, so a
``by = "journey"`` rule decides that span by the session, not by its trace id.
"""

from __future__ import annotations

from typing import Final

import pytest
from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.instrumentation.wsgi import wsgi_getter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased

from threadline.conventions import SESSION_ID
from threadline.sampling_rules import journey_random, parse, sampled_by_ratio
from threadline.sdk.propagation import InboundSession, build_propagator
from threadline.sdk.sampling.rule_sampler import RuleSampler

SESSION: Final = InboundSession(header="X-Session-Id", cookie="sid")
PROPAGATOR: Final = build_propagator(inbound_session=SESSION)

CARRIERS = [
    pytest.param({"x-session-id": "s-h"}, "s-h", id="header"),
    pytest.param({"cookie": "theme=dark; sid=s-c"}, "s-c", id="cookie"),
    pytest.param({"cookie": 'sid="s-q"'}, "s-q", id="quoted-cookie"),
    pytest.param({"x-session-id": "s-h", "cookie": "sid=s-c"}, "s-h", id="header-before-cookie"),
    pytest.param({"x-session-id": "x" * 129, "cookie": "sid=s-c"}, "s-c", id="too-long-header"),
    pytest.param({"x-session-id": " ", "cookie": "sid=s-c"}, "s-c", id="blank-header"),
    pytest.param({"baggage": "session.id=s-up", "x-session-id": "s-h"}, "s-up", id="baggage-first"),
    pytest.param({"cookie": "other=1; broken; sid"}, None, id="cookie-without-session"),
    pytest.param({"x-session-id": "bad\x00id"}, None, id="unprintable-header"),
    pytest.param({}, None, id="nothing"),
]


@pytest.mark.parametrize(("carrier", "session_id"), CARRIERS)
def test_session_from_header_or_cookie_unless_baggage(
    carrier: dict[str, str], session_id: str | None
) -> None:
    """Baggage wins, then the session header, then the session cookie; unusable values are
    ignored."""
    context = PROPAGATOR.extract(carrier, Context())
    assert baggage.get_baggage(SESSION_ID, context) == session_id


def test_wsgi_environ_header_and_asgi_cookie_lines() -> None:
    """The getters of the WSGI and ASGI instrumentations find the header and every cookie line
    (HTTP/2 splits cookies over several)."""
    environ = {"HTTP_X_SESSION_ID": "s-wsgi"}
    extracted = PROPAGATOR.extract(environ, Context(), wsgi_getter)
    assert baggage.get_baggage(SESSION_ID, extracted) == "s-wsgi"
    scope = {"headers": [(b"cookie", b"theme=dark"), (b"cookie", b"sid=s-asgi")]}
    extracted = PROPAGATOR.extract(scope, Context(), asgi_getter)
    assert baggage.get_baggage(SESSION_ID, extracted) == "s-asgi"


def test_without_an_inbound_session_the_header_is_not_read() -> None:
    """A propagator built without ``inbound_session`` reads baggage only."""
    context = build_propagator().extract({"x-session-id": "s-h"}, Context())
    assert baggage.get_baggage(SESSION_ID, context) is None


def test_a_journey_rule_decides_every_request_of_a_session_alike() -> None:
    """Server spans started with the extracted context of requests carrying only the session
    header get the session's decision, whatever their trace ids."""
    rules = parse({"default": {"probability": 0.5, "by": "journey"}})
    provider = TracerProvider(sampler=ParentBased(root=RuleSampler("edge", rules)))
    tracer = provider.get_tracer("test")
    decisions: dict[str, set[bool]] = {}
    for number in range(40):
        session = f"session-{number}"
        for _ in range(4):
            context = PROPAGATOR.extract({"x-session-id": session}, Context())
            with tracer.start_as_current_span("GET /edge", context=context) as span:
                sampled = span.get_span_context().trace_flags.sampled
            decisions.setdefault(session, set()).add(sampled)
    assert all(len(seen) == 1 for seen in decisions.values()), decisions
    kept = {session for session, seen in decisions.items() if seen == {True}}
    assert kept == {s for s in decisions if sampled_by_ratio(journey_random(s), 0.5)}
    assert 10 <= len(kept) <= 30

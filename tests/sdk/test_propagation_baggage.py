"""W3C Baggage: percent-encoding, properties, malformed members and limits.

Case ids name the section (anchor) of https://www.w3.org/TR/baggage/ they check.
"""

from __future__ import annotations

import re

import pytest
from opentelemetry import baggage
from opentelemetry.context import Context

from threadline.conventions import JOURNEY_ID, SESSION_ID, USER_ID
from threadline.sdk.propagation import BaggagePropagator, build_propagator
from threadline.sdk.propagation.baggage import (
    MAX_BAGGAGE_BYTES,
    MAX_MEMBERS,
    parse_baggage,
    received_properties,
)

# #definition: what may appear on the wire: list-members of tokens and baggage-octets.
BAGGAGE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def _extract(*lines: str) -> dict[str, object]:
    carrier = {"baggage": list(lines)}
    return dict(baggage.get_all(BaggagePropagator().extract(carrier, Context())))


def _inject(entries: dict[str, str], context: Context | None = None) -> str | None:
    context = Context() if context is None else context
    for key, value in entries.items():
        context = baggage.set_baggage(key, value, context)
    carrier: dict[str, str] = {}
    BaggagePropagator().inject(carrier, context)
    return carrier.get("baggage")


ROUND_TRIP = [
    pytest.param("alice", id="value-plain"),
    pytest.param("DF 28", id="value-space"),
    pytest.param("caf\u00e9 \u2713 \u65e5\u672c \U0001f600", id="value-unicode-utf8"),
    pytest.param("a=b==c", id="value-equals-signs"),
    pytest.param("a,b", id="value-comma"),
    pytest.param("a;b", id="value-semicolon"),
    pytest.param("100%", id="value-percent-sign"),
    pytest.param("%20 is not a space", id="value-literal-percent-escape"),
    pytest.param("a+b", id="value-plus-sign"),
    pytest.param('say "hi"\\', id="value-dquote-and-backslash"),
    pytest.param("tab\tnew\nline", id="value-control-characters"),
    pytest.param("", id="value-empty-value"),
]


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_value_survives_a_hop(value: str) -> None:
    """Any string value arrives exactly as it was sent, encoded in baggage-octets on the wire
    ("Any characters outside of the baggage-octet range of characters MUST be
    percent-encoded")."""
    header = _inject({"k": value})
    assert header is not None
    assert header.startswith("k=")
    assert BAGGAGE_OCTETS.fullmatch(header[2:])
    assert _extract(header) == {"k": value}


DECODED = [
    pytest.param("k=a+b", "a+b", id="value-rfc3986-plus-is-plus"),
    pytest.param("k=a%20b", "a b", id="value-percent-20-is-space"),
    pytest.param("k=%E2%9C%93", "\u2713", id="value-utf8-percent-decoded"),
    pytest.param("k=%e2%9c%93", "\u2713", id="value-lowercase-escapes"),
    pytest.param("k=%FF%FEok", "\ufffd\ufffdok", id="value-invalid-utf8-is-U+FFFD"),
    pytest.param("k=DF%2028", "DF 28", id="examples-of-http-headers"),
    pytest.param("k=a=b", "a=b", id="value-equals-inside-value"),
    pytest.param("k = v ", "v", id="value-ows-trimmed"),
    pytest.param("k=", "", id="value-empty-value"),
]


@pytest.mark.parametrize(("header", "value"), DECODED)
def test_value_is_percent_decoded_as_rfc_3986_says(header: str, value: str) -> None:
    """Received values are percent-decoded as UTF-8 (not form-decoded), bad octets as U+FFFD."""
    assert _extract(header) == {"k": value}


def test_multiple_field_lines_are_combined() -> None:
    """Baggage split over several ``baggage`` field lines arrives whole.

    #baggage-http-header-format: "Multiple baggage headers are allowed".
    """
    assert _extract("userId=alice", "serverNode=DF%2028, isProduction=false") == {
        "userId": "alice",
        "serverNode": "DF 28",
        "isProduction": "false",
    }


def test_spec_example_with_ows_and_properties() -> None:
    """The example header of #example parses into its three keys with their plain values."""
    header = (
        "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"
    )
    assert _extract(header) == {"key1": "value1", "key2": "value2", "key3": "value3"}


MALFORMED = [
    pytest.param("novalue", id="definition-no-equals-sign"),
    pytest.param("=v", id="key-empty-key"),
    pytest.param("bad key=v", id="key-space-in-key"),
    pytest.param("k(1)=v", id="key-key-not-a-token"),
    pytest.param("k\u00e9=v", id="key-non-ascii-key"),
    pytest.param('k="quoted"', id="value-dquote-in-value"),
    pytest.param("k=a b", id="value-space-inside-value"),
    pytest.param("k=a\\b", id="value-backslash-in-value"),
    pytest.param("k=caf\u00e9", id="value-unencoded-non-ascii-value"),
    pytest.param("k=a\tb", id="value-tab-inside-value"),
]


@pytest.mark.parametrize("member", MALFORMED)
def test_malformed_member_is_skipped_and_valid_ones_kept(member: str) -> None:
    """A malformed list-member is dropped on its own and the valid members around it arrive.

    #mutating-baggage: a system "MAY remove that entry".
    """
    assert _extract(f"first=1,{member},last=2") == {"first": "1", "last": "2"}


def test_empty_members_are_ignored() -> None:
    """Empty list elements left by joined field lines are skipped (RFC 9110 §5.6.1)."""
    assert _extract(",, a=1 , ,b=2,", "") == {"a": "1", "b": "2"}


def test_duplicate_key_keeps_the_first_entry() -> None:
    """Of repeated keys the first entry wins (#mutating-baggage: "keys may be deduplicated by
    keeping the first entry")."""
    assert _extract("k=1,other=x,k=2", "k=3") == {"k": "1", "other": "x"}


PROPERTIES = [
    pytest.param("k=v;p1;p2=x", ("p1", "p2=x"), id="property-flag-and-key-value"),
    pytest.param("k=v ; p1 ; p2 = x ", ("p1", "p2=x"), id="property-ows-trimmed"),
    pytest.param("k=v;bad prop;p=1", ("p=1",), id="property-malformed-property-dropped"),
    pytest.param("k=v;;p=1", ("p=1",), id="property-empty-property-dropped"),
    pytest.param('k=v;p="x"', (), id="property-property-value-not-baggage-octets"),
]


@pytest.mark.parametrize(("header", "properties"), PROPERTIES)
def test_properties_are_kept_apart_from_the_value(header: str, properties: tuple[str, ...]) -> None:
    """Properties never leak into the value; valid ones are kept, malformed ones dropped alone."""
    context = BaggagePropagator().extract({"baggage": header}, Context())
    assert baggage.get_baggage("k", context) == "v"
    kept = received_properties(context).get("k")
    assert (kept.properties if kept else ()) == properties


def test_properties_travel_on_with_their_unchanged_value() -> None:
    """A service that passes baggage on passes its properties on too."""
    propagator = BaggagePropagator()
    context = propagator.extract({"baggage": "k=v;ttl=3;sensitive, other=1"}, Context())
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert carrier == {"baggage": "k=v;ttl=3;sensitive,other=1"}


def test_properties_are_dropped_when_the_value_changes() -> None:
    """A new value travels without the properties that described the old one."""
    propagator = BaggagePropagator()
    context = propagator.extract({"baggage": "k=v;ttl=3"}, Context())
    assert _inject({"k": "new"}, context) == "k=new"


def test_180_members_are_kept_and_the_181st_dropped() -> None:
    """At most 180 list-members are read (#definition: 0*179); the rest are dropped."""
    header = ",".join(f"k{index}=v" for index in range(MAX_MEMBERS + 1))
    entries = _extract(header)
    assert len(entries) == MAX_MEMBERS
    assert "k179" in entries
    assert "k180" not in entries


def test_at_least_64_members_propagate() -> None:
    """64 list-members go through a hop untouched (#limits: "at least 64 list-members")."""
    entries = {f"k{index}": f"v{index}" for index in range(64)}
    header = _inject(entries)
    assert header is not None
    assert _extract(header) == entries


def test_header_over_8192_bytes_keeps_the_members_that_fit() -> None:
    """An oversized header loses whole members until it fits 8192 bytes (#limits), not all."""
    members = [f"k{index}={'v' * 1000}" for index in range(10)]  # 10 × 1005 + 9 commas
    entries = _extract(",".join(members))
    assert list(entries) == [f"k{index}" for index in range(8)]  # 8 × 1005 + 7 = 8047
    assert all(value == "v" * 1000 for value in entries.values())


def test_member_too_large_alone_is_dropped_and_the_rest_kept() -> None:
    """A single member over 8192 bytes cannot be sent whole, so it alone is dropped."""
    huge = f"huge={'x' * MAX_BAGGAGE_BYTES}"
    assert _extract(f"a=1,{huge},b=2") == {"a": "1", "b": "2"}


def test_inject_stays_within_8192_bytes_with_whole_members() -> None:
    """Inject never sends more than 8192 bytes and never a partial member (#limits)."""
    entries = {f"k{index}": "\u2713" * 300 for index in range(20)}  # 2,700+ bytes encoded each
    header = _inject(entries)
    assert header is not None
    assert len(header.encode()) <= MAX_BAGGAGE_BYTES
    received = _extract(header)
    assert received
    assert all(value == "\u2713" * 300 for value in received.values())


def test_inject_writes_at_most_180_members() -> None:
    """Inject sends no more than the 180 list-members the grammar allows."""
    header = _inject({f"k{index}": "v" for index in range(200)})
    assert header is not None
    assert header.count(",") == MAX_MEMBERS - 1


def test_inject_skips_keys_that_are_not_tokens() -> None:
    """A key that cannot be written as a token is left out; the other entries are sent."""
    assert _inject({"bad key": "1", "user.id": "u1", "k\u00e9": "2"}) == "user.id=u1"


def test_inject_writes_nothing_without_baggage() -> None:
    """No baggage, no ``baggage`` field."""
    assert _inject({}) is None


def test_journey_keys_cross_a_hop_with_trace_context() -> None:
    """The journey keys Threadline stamps on spans arrive with the trace in the next service."""
    propagator = build_propagator()
    context = Context()
    journey = {SESSION_ID: "s-42", USER_ID: "u:9f86d081", JOURNEY_ID: "checkout #1"}
    for key, value in journey.items():
        context = baggage.set_baggage(key, value, context)
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert set(carrier) == {"baggage"}
    assert dict(baggage.get_all(propagator.extract(carrier))) == journey


def test_parse_baggage_reads_members_in_order() -> None:
    """Members keep the order they arrived in, which mutation must preserve (#baggage-string)."""
    members = parse_baggage(["b=2,a=1", "c=3;p"])
    assert [(m.key, m.value, m.properties) for m in members] == [
        ("b", "2", ()),
        ("a", "1", ()),
        ("c", "3", ("p",)),
    ]

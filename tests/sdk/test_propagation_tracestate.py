"""W3C Trace Context Level 2 ``tracestate``: grammar, combining, duplicates and limits.

Case ids name the section of https://www.w3.org/TR/trace-context-2/ they check.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from threadline.sdk.propagation import Level2TraceState, TraceContextPropagator
from threadline.sdk.propagation.tracestate import (
    MAX_MEMBERS,
    MAX_TRACESTATE_CHARS,
    format_tracestate,
    parse_tracestate,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ALL_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@"
ALL_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=").strip()

# §3.3.2 — "The tracestate field value is a list of list-members separated by commas"
LIST = "3.3.2: list-members separated by commas, combined over all field lines in order"
EMPTY = "3.3.2: 'Empty and whitespace-only list members are allowed'"
OWS = "3.3.2: 'Spaces and horizontal tabs surrounding list-members are ignored'"
KEY = (
    "3.3.2.2.1: key = ( lcalpha / DIGIT ) 0*255 ( keychar ); "
    "keychar = lcalpha / DIGIT / '_' / '-' / '*' / '/' / '@'"
)
VALUE = "3.3.2.2.2: value = 0*255(chr) nblk-chr; printable ASCII but ',' and '='"
LIMIT = "3.3.2: 'There can be a maximum of 32 list-members in a list'"
WHOLE = (
    "4.3 step 3: 'If the tracestate header cannot be parsed the vendor MAY discard the "
    "entire header' (the conformance suite's strict level expects it discarded)"
)


def _bars(count: int) -> list[str]:
    """``count`` members spread over field lines of ten, as the conformance suite sends them."""
    members = [f"bar{index:02d}={index:02d}" for index in range(1, count + 1)]
    return [",".join(members[start : start + 10]) for start in range(0, count, 10)]


# (field lines, the tracestate forwarded, the spec line the case checks)
ACCEPTED = [
    pytest.param(["rojo=00f067aa0ba902b7"], "rojo=00f067aa0ba902b7", LIST, id="single-member"),
    pytest.param(
        ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        LIST,
        id="order-kept",
    ),
    pytest.param(
        ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
        "foo=1,bar=2,rojo=1,congo=2,baz=3",
        LIST,
        id="repeated-headers-combined-in-order",
    ),
    pytest.param([""], "", EMPTY, id="empty-header"),
    pytest.param(["foo=1", ""], "foo=1", EMPTY, id="empty-header-after"),
    pytest.param(["", "foo=1"], "foo=1", EMPTY, id="empty-header-before"),
    pytest.param(["foo=1,,bar=2, ,\t,"], "foo=1,bar=2", EMPTY, id="empty-members"),
    pytest.param(["foo=1 \t , \t bar=2, \t baz=3"], "foo=1,bar=2,baz=3", OWS, id="ows-spaces"),
    pytest.param(["foo=1\t \t,\t \tbar=2,\t \tbaz=3"], "foo=1,bar=2,baz=3", OWS, id="ows-tabs"),
    pytest.param([" foo=1"], "foo=1", OWS, id="ows-leading-space"),
    pytest.param(["\tfoo=1"], "foo=1", OWS, id="ows-leading-tab"),
    pytest.param(["foo=1 "], "foo=1", OWS, id="ows-trailing-space"),
    pytest.param(["foo=1\t"], "foo=1", OWS, id="ows-trailing-tab"),
    pytest.param(["\t foo=1 \t"], "foo=1", OWS, id="ows-both-sides"),
    pytest.param(["foo= 1"], "foo= 1", VALUE, id="leading-spaces-are-value"),
    pytest.param(
        [f"{ALL_KEY_CHARS}={ALL_VALUE_CHARS}"],
        f"{ALL_KEY_CHARS}={ALL_VALUE_CHARS}",
        KEY,
        id="every-allowed-character",
    ),
    pytest.param(["1vendor=x"], "1vendor=x", KEY, id="key-starts-with-digit"),
    pytest.param(["foo@=1,bar=2"], "foo@=1,bar=2", KEY, id="at-sign-last"),
    pytest.param(["f@oo=1,bar=2"], "f@oo=1,bar=2", KEY, id="at-sign-second"),
    pytest.param(["foo@@bar=1,bar=2"], "foo@@bar=1,bar=2", KEY, id="at-signs-doubled"),
    pytest.param(["foo@bar@baz=1,bar=2"], "foo@bar@baz=1,bar=2", KEY, id="at-signs-twice"),
    pytest.param(["1@@=1"], "1@@=1", KEY, id="at-signs-after-a-digit"),
    pytest.param(
        ["foo=1", f"{'z' * 256}=1"], f"foo=1,{'z' * 256}=1", KEY, id="key-of-256-characters"
    ),
    pytest.param(
        ["foo=1", f"{'t' * 241}@{'v' * 14}=1"],
        f"foo=1,{'t' * 241}@{'v' * 14}=1",
        KEY,
        id="key-tenant-241-system-14",
    ),
    # Level 1 capped tenant (241) and system (14) apart; Level 2 caps only the whole key.
    pytest.param(["foo=1", f"{'t' * 242}@v=1"], f"foo=1,{'t' * 242}@v=1", KEY, id="key-tenant-242"),
    pytest.param(["foo=1", f"t@{'v' * 15}=1"], f"foo=1,t@{'v' * 15}=1", KEY, id="key-system-15"),
    pytest.param([f"k={'v' * 256}"], f"k={'v' * 256}", VALUE, id="value-of-256-characters"),
    pytest.param(_bars(32), ",".join(_bars(32)), LIMIT, id="32-members-over-4-headers"),
    pytest.param(
        [",".join(_bars(32)), ", ,", ""],
        ",".join(_bars(32)),
        EMPTY,
        id="32-members-and-empty-ones",
    ),
    pytest.param(
        [",".join(f"k{i}={'v' * 100}" for i in range(8))],
        ",".join(f"k{i}={'v' * 100}" for i in range(8)),
        "3.5: 'Vendors receiving a tracestate request header MUST send it to outgoing requests'",
        id="valid-list-over-512-characters-forwarded-whole",
    ),
]


@pytest.mark.parametrize(("lines", "header", "spec"), ACCEPTED)
def test_valid_tracestate_is_kept_whole(lines: list[str], header: str, spec: str) -> None:
    """Every list-member of a valid tracestate is kept, in order, across all field lines."""
    assert parse_tracestate(lines).to_header() == header, spec


# (field lines, the spec line the case checks): each one discards the whole tracestate.
DISCARDED = [
    pytest.param(["@foo=1,bar=2"], KEY, id="at-sign-first"),
    pytest.param(["bar=2,@=1"], KEY, id="at-sign-alone"),
    pytest.param(["bar=2,@@foo=1"], KEY, id="at-signs-first"),
    pytest.param(["foo =1"], KEY, id="space-in-key"),
    pytest.param(["FOO=1"], KEY, id="uppercase-key"),
    pytest.param(["foo.bar=1"], KEY, id="dot-in-key"),
    pytest.param(["_foo=1,bar=2"], KEY, id="key-starts-with-underscore"),
    pytest.param(["=1,bar=2"], KEY, id="empty-key"),
    pytest.param(["ключ=1,bar=2"], KEY, id="non-ascii-key"),
    pytest.param(["foo=1", f"{'z' * 257}=1"], KEY, id="key-of-257-characters"),
    pytest.param(["foo=bar=baz"], VALUE, id="equals-in-value"),
    pytest.param(["foo=,bar=3"], VALUE, id="empty-value"),
    pytest.param(["foo=a\tb,bar=2"], VALUE, id="tab-in-value"),
    pytest.param(["foo=caf\u00e9,bar=2"], VALUE, id="non-ascii-value"),
    pytest.param(["bar=2", f"foo={'v' * 257}"], VALUE, id="value-of-257-characters"),
    pytest.param(["rojo=1,foo,congo=2"], LIST, id="member-without-equals-sign"),
    pytest.param(["rojo=1", "congo=2", "FOO=1"], WHOLE, id="bad-member-in-a-later-header"),
    pytest.param(_bars(33), LIMIT, id="33-members-over-4-headers"),
    pytest.param([",".join(_bars(33))], LIMIT, id="33-members-in-one-header"),
    pytest.param(["foo=1,foo=2", *_bars(32)], LIMIT, id="33-members-counting-a-duplicate"),
]


@pytest.mark.parametrize(("lines", "spec"), DISCARDED)
def test_invalid_tracestate_is_discarded_whole(lines: list[str], spec: str) -> None:
    """One invalid list-member, or more than 32, and nothing of the tracestate is kept."""
    assert parse_tracestate(lines).to_header() == "", spec


@pytest.mark.parametrize(("lines", "spec"), DISCARDED)
def test_discarded_tracestate_leaves_the_traceparent(lines: list[str], spec: str) -> None:
    """The trace continues from traceparent alone: "failure to parse tracestate MUST NOT
    affect the parsing of traceparent" (§4.3), and no tracestate is sent on."""
    propagator = TraceContextPropagator()
    context = propagator.extract({"traceparent": [TRACEPARENT], "tracestate": lines})
    parent = trace.get_current_span(context).get_span_context()
    assert f"{parent.trace_id:032x}" == TRACEPARENT.split("-")[1], spec
    assert len(parent.trace_state) == 0, spec
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert carrier == {"traceparent": TRACEPARENT}, spec


DUPLICATES = [
    pytest.param(["foo=1,foo=2"], "foo=1", id="3.3.3-duplicate-keeps-first"),
    pytest.param(["foo=1,foo=1"], "foo=1", id="3.3.3-identical-duplicate"),
    pytest.param(["foo=1,bar=2,foo=3"], "foo=1,bar=2", id="3.3.3-duplicate-after-other"),
    pytest.param(["foo=1", "foo=2"], "foo=1", id="3.3.2-duplicate-across-field-lines"),
]


@pytest.mark.parametrize(("lines", "header"), DUPLICATES)
def test_duplicate_key_keeps_the_left_most_entry(lines: list[str], header: str) -> None:
    """A repeated key keeps its first entry and loses later ones, the rest of the header intact.

    §3.3.3: "Only one entry per key is allowed"; §3.5: modified keys "MUST be moved to the
    beginning (left)", so the left-most entry is the latest position, and "vendors MAY
    also discard duplicate keys that were not generated by them".
    """
    assert parse_tracestate(lines).to_header() == header


def _members(count: int, width: int = 1) -> list[str]:
    return [f"k{index}={'v' * width}" for index in range(count)]


def test_adding_to_a_full_list_drops_the_last_entry() -> None:
    """Threadline adding an entry to a list of 32 truncates it as §3.3.3.1 says: "entries
    SHOULD be removed starting from the end of tracestate"; the new entry goes left."""
    full = parse_tracestate([",".join(_members(32))])
    assert len(full) == MAX_MEMBERS
    added = full.add("new", "1")
    assert added.to_header() == ",".join(["new=1", *_members(31)])
    assert full.update("k5", "w").to_header().startswith("k5=w,k0=v,k1=v")
    assert len(full.update("k5", "w")) == MAX_MEMBERS


def test_adding_to_a_list_over_512_characters_drops_long_entries_first() -> None:
    """Adding to a list over 512 characters removes entries longer than 128 characters
    first ("Entries larger than 128 characters long SHOULD be removed first", §3.3.3.1)."""
    short = [f"s{index}={'v' * 60}" for index in range(6)]  # 63 each
    long_entry = f"long={'x' * 120}"  # 125: not long, but see the next one
    longer_entry = f"longer={'x' * 130}"  # 137: over 128, removed first
    header = ",".join([short[0], longer_entry, *short[1:3], long_entry, *short[3:4]])
    received = parse_tracestate([header])
    assert received.to_header() == header  # forwarded whole as it arrived
    added = received.add("new", "1")
    assert added.to_header() == ",".join(["new=1", short[0], *short[1:3], long_entry, *short[3:4]])
    assert len(added.to_header()) <= MAX_TRACESTATE_CHARS


def test_tracestate_without_valid_traceparent_is_discarded() -> None:
    """A tracestate with no valid traceparent beside it is discarded (§4.2 step 3)."""
    context = TraceContextPropagator().extract({"tracestate": "congo=t61rcWkgMzE"})
    assert not trace.get_current_span(context).get_span_context().is_valid


def _inject(trace_state: TraceState) -> dict[str, str]:
    span_context = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, False, TraceFlags(1), trace_state
    )
    carrier: dict[str, str] = {}
    TraceContextPropagator().inject(
        carrier, trace.set_span_in_context(NonRecordingSpan(span_context))
    )
    return carrier


def test_inject_writes_at_most_32_members() -> None:
    """Inject sends no more than 32 list-members, whatever the span's TraceState holds."""
    entries = [(f"k{index}", "v") for index in range(40)]
    sent = _inject(_StateWithoutLimits(entries))
    assert sent["tracestate"] == ",".join(f"k{index}=v" for index in range(MAX_MEMBERS))


def test_inject_truncates_an_over_long_state_per_3_3_3_1() -> None:
    """Inject never sends more than 512 characters: long entries go first, then the last."""
    entries = [("first", "1"), ("long", "x" * 200), *[(f"k{i}", "v" * 60) for i in range(7)]]
    header = format_tracestate(_StateWithoutLimits(entries))
    assert header == ",".join(["first=1", *[f"k{i}={'v' * 60}" for i in range(7)]])
    assert len(header) <= MAX_TRACESTATE_CHARS


class _StateWithoutLimits(TraceState):
    """A TraceState as a third-party sampler might build it, ignoring the spec's limits."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        super().__init__()
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __getitem__(self, key: str) -> str:
        return self._entries[key]

    def items(self) -> ItemsView[str, str]:
        return self._entries.items()


def test_inject_writes_the_stock_trace_state_of_a_local_span() -> None:
    """A TraceState made with the stock OpenTelemetry class is sent as it is."""
    assert _inject(TraceState([("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")])) == {
        "traceparent": TRACEPARENT,
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    }


def test_inject_writes_no_tracestate_when_empty() -> None:
    """An empty TraceState sends no ``tracestate`` field ("SHOULD avoid sending them", §3.3.2)."""
    assert _inject(Level2TraceState()) == {"traceparent": TRACEPARENT}


def test_received_tracestate_is_forwarded_unchanged() -> None:
    """What arrives is what leaves: "Vendors receiving a tracestate request header MUST send
    it to outgoing requests" (§3.5), Level 2 keys included."""
    propagator = TraceContextPropagator()
    received = {"traceparent": TRACEPARENT, "tracestate": "1vendor=x, a@b@c=y,rojo=z "}
    carrier: dict[str, str] = {}
    propagator.inject(carrier, propagator.extract(received))
    assert carrier["tracestate"] == "1vendor=x,a@b@c=y,rojo=z"


MUTATIONS = [
    pytest.param(lambda s: s.add("new", "1"), "new=1,a=1,b=2,c=3", id="3.5-add-on-the-left"),
    pytest.param(lambda s: s.add("b", "9"), "a=1,b=2,c=3", id="3.5-add-never-duplicates"),
    pytest.param(lambda s: s.add("Bad", "1"), "a=1,b=2,c=3", id="3.3.2.2.1-add-invalid-key"),
    pytest.param(lambda s: s.update("c", "9"), "c=9,a=1,b=2", id="3.5-update-moves-left"),
    pytest.param(lambda s: s.update("new", "1"), "new=1,a=1,b=2,c=3", id="update-adds-if-absent"),
    pytest.param(lambda s: s.update("b", "x=y"), "a=1,b=2,c=3", id="3.3.2.2.2-update-invalid"),
    pytest.param(lambda s: s.delete("b"), "a=1,c=3", id="3.5-delete"),
    pytest.param(lambda s: s.delete("zzz"), "a=1,b=2,c=3", id="3.5-delete-absent"),
]


@pytest.mark.parametrize(("mutate", "header"), MUTATIONS)
def test_level2_trace_state_mutations_follow_3_5(
    mutate: Callable[[Level2TraceState], TraceState], header: str
) -> None:
    """Samplers that update the state get the §3.5 mutations: new and modified keys on the left."""
    state = Level2TraceState([("a", "1"), ("b", "2"), ("c", "3")])
    result = mutate(state)
    assert isinstance(result, Level2TraceState)
    assert result.to_header() == header
    assert state.to_header() == "a=1,b=2,c=3"  # immutable: the original is unchanged


def test_level2_trace_state_behaves_as_a_mapping() -> None:
    """Code written against the stock TraceState reads a Level2TraceState the same way."""
    state = Level2TraceState.from_header(["rojo=1", "1vendor=2"])
    assert dict(state) == {"rojo": "1", "1vendor": "2"}
    assert list(state.keys()) == ["rojo", "1vendor"]
    assert list(state.values()) == ["1", "2"]
    assert "rojo" in state
    assert state["1vendor"] == "2"
    assert state == Level2TraceState([("rojo", "1"), ("1vendor", "2")])
    assert len(Level2TraceState.get_default()) == 0

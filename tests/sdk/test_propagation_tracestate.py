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

PARSED = [
    pytest.param(["rojo=00f067aa0ba902b7"], "rojo=00f067aa0ba902b7", id="3.3.2-single-member"),
    pytest.param(
        ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        id="3.3.2-order-kept",
    ),
    pytest.param(
        ["foo=1,bar=2", "rojo=1,congo=2", "baz=3"],
        "foo=1,bar=2,rojo=1,congo=2,baz=3",
        id="3.3.2-multiple-field-lines-combined-in-order",
    ),
    pytest.param(["", "foo=1"], "foo=1", id="3.3.2-empty-field-line-accepted"),
    pytest.param(["foo=1", ""], "foo=1", id="3.3.2-trailing-empty-field-line"),
    pytest.param(
        ["foo=1 \t , \t bar=2,, \t ,baz=3"], "foo=1,bar=2,baz=3", id="3.3.2-empty-members-and-ows"
    ),
    pytest.param(["\t foo=1 \t"], "foo=1", id="3.3.2-ows-around-list"),
    pytest.param(["foo= 1"], "foo= 1", id="3.3.2.2.2-leading-spaces-are-value"),
    pytest.param(["foo=1   "], "foo=1", id="3.3.2.2.2-trailing-spaces-are-ows"),
    pytest.param(
        [f"{ALL_KEY_CHARS}={ALL_VALUE_CHARS}"],
        f"{ALL_KEY_CHARS}={ALL_VALUE_CHARS}",
        id="3.3.2.2-every-allowed-character",
    ),
    # Keys Level 2 allows and the Level 1 grammar (simple-key / multi-tenant-key) forbids.
    pytest.param(["1vendor=x"], "1vendor=x", id="3.3.2.2.1-L2-key-may-start-with-digit"),
    pytest.param(["a@b@c=x"], "a@b@c=x", id="3.3.2.2.1-L2-key-several-at-signs"),
    pytest.param(["vendor@=x"], "vendor@=x", id="3.3.2.2.1-L2-key-ending-in-at"),
    pytest.param(
        [f"t@{'s' * 20}=x"], f"t@{'s' * 20}=x", id="3.3.2.2.1-L2-system-part-over-14-chars"
    ),
    pytest.param([f"{'t' * 250}@s=x"], f"{'t' * 250}@s=x", id="3.3.2.2.1-L2-tenant-over-241"),
    # Keys both grammars allow.
    pytest.param(["fw529a3039@dt=x"], "fw529a3039@dt=x", id="3.3.2.2.1-L1-multi-tenant-key"),
    pytest.param(["my-tracing/system*_1=x"], "my-tracing/system*_1=x", id="3.3.2.2.1-L1-simple"),
    pytest.param([f"{'k' * 256}=x"], f"{'k' * 256}=x", id="3.3.2.2.1-key-of-256-chars"),
    pytest.param([f"k={'v' * 256}"], f"k={'v' * 256}", id="3.3.2.2.2-value-of-256-chars"),
]


@pytest.mark.parametrize(("lines", "header"), PARSED)
def test_valid_tracestate_is_kept(lines: list[str], header: str) -> None:
    """Every valid list-member is kept, in order, across all ``tracestate`` field lines."""
    assert parse_tracestate(lines).to_header() == header


INVALID_MEMBERS = [
    pytest.param("FOO=1", id="3.3.2.2.1-both-grammars-uppercase-key"),
    pytest.param("foo.bar=1", id="3.3.2.2.1-both-grammars-dot-in-key"),
    pytest.param("@foo=1", id="3.3.2.2.1-both-grammars-key-starts-with-at"),
    pytest.param("_foo=1", id="3.3.2.2.1-both-grammars-key-starts-with-underscore"),
    pytest.param("foo =1", id="3.3.2.2.1-both-grammars-space-in-key"),
    pytest.param("=1", id="3.3.2.2.1-empty-key"),
    pytest.param(f"{'k' * 257}=1", id="3.3.2.2.1-key-over-256-chars"),
    pytest.param("ключ=1", id="3.3.2.2.1-non-ascii-key"),
    pytest.param("foo", id="3.3.2.2-no-equals-sign"),
    pytest.param("foo=", id="3.3.2.2.2-empty-value"),
    pytest.param("foo=a=b", id="3.3.2.2.2-equals-in-value"),
    pytest.param("foo=a\tb", id="3.3.2.2.2-tab-in-value"),
    pytest.param("foo=caf\u00e9", id="3.3.2.2.2-non-ascii-value"),
    pytest.param(f"foo={'v' * 257}", id="3.3.2.2.2-value-over-256-chars"),
]


@pytest.mark.parametrize("member", INVALID_MEMBERS)
def test_invalid_member_is_skipped_and_the_rest_kept(member: str) -> None:
    """An invalid list-member is dropped on its own; its neighbours still propagate (§4.3 step
    3: "Invalid tracestate entries MAY also be discarded")."""
    assert parse_tracestate([f"rojo=1,{member},congo=2"]).to_header() == "rojo=1,congo=2"


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


def test_thirty_two_members_are_all_kept() -> None:
    """A tracestate of 32 list-members, the most §3.3.2.1 allows, propagates whole."""
    members = _members(32)
    assert parse_tracestate([",".join(members)]).to_header() == ",".join(members)


def test_thirty_three_members_lose_the_last() -> None:
    """Past 32 list-members, entries are removed from the end (§3.3.3.1)."""
    members = _members(33)
    assert parse_tracestate([",".join(members)]).to_header() == ",".join(members[:32])


def test_members_over_the_limit_across_field_lines_lose_the_last() -> None:
    """The 32-member limit applies to the combined header, not to each field line."""
    members = _members(40)
    lines = [",".join(members[:20]), ",".join(members[20:])]
    assert parse_tracestate(lines).to_header() == ",".join(members[:32])


def test_512_characters_are_kept() -> None:
    """A combined header of exactly 512 characters propagates whole (§3.3.3.1 'at least 512')."""
    members = [f"k{index}={'v' * 100}" for index in range(4)]
    members.append("k4=" + "v" * (MAX_TRACESTATE_CHARS - len(",".join(members)) - len(",k4=")))
    header = ",".join(members)
    assert len(header) == MAX_TRACESTATE_CHARS
    assert parse_tracestate([header]).to_header() == header


def test_over_512_characters_loses_entries_from_the_end() -> None:
    """Past 512 characters whole entries go from the end until it fits (§3.3.3.1)."""
    members = [f"k{index}={'v' * 100}" for index in range(6)]  # 103 characters each
    kept = parse_tracestate([",".join(members)]).to_header()
    assert kept == ",".join(members[:4])  # 4 × 103 + 3 = 415; a fifth makes 519


def test_entries_over_128_characters_are_removed_first() -> None:
    """Truncation drops entries longer than 128 characters before any short ones (§3.3.3.1)."""
    short = [f"s{index}={'v' * 60}" for index in range(6)]  # 63 each
    long_entry = f"long={'x' * 200}"  # 205
    header = ",".join([short[0], long_entry, *short[1:]])  # 6 × 63 + 205 + 6 = 589
    assert parse_tracestate([header]).to_header() == ",".join(short)


def test_only_as_many_long_entries_as_needed_are_removed() -> None:
    """Long entries are removed right-most first and only until the header fits."""
    first_long = f"a={'x' * 150}"
    second_long = f"b={'y' * 150}"
    header = ",".join([first_long, "c=1", second_long, "d=2", "e=" + "z" * 200])
    assert parse_tracestate([header]).to_header() == ",".join(
        [first_long, "c=1", second_long, "d=2"]
    )


def test_tracestate_without_valid_traceparent_is_discarded() -> None:
    """A tracestate with no valid traceparent beside it is discarded (§4.2 step 3)."""
    context = TraceContextPropagator().extract({"tracestate": "congo=t61rcWkgMzE"})
    assert not trace.get_current_span(context).get_span_context().is_valid


def test_invalid_tracestate_does_not_affect_traceparent() -> None:
    """A wholly invalid tracestate still leaves the traceparent's parent in place (§3.3)."""
    context = TraceContextPropagator().extract({"traceparent": TRACEPARENT, "tracestate": "A=,=,"})
    parent = trace.get_current_span(context).get_span_context()
    assert parent.is_valid
    assert len(parent.trace_state) == 0


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


def test_level2_trace_state_refuses_a_33rd_key() -> None:
    """Adding to a full state leaves it unchanged rather than pushing a vendor's entry out."""
    full = Level2TraceState([(f"k{index}", "v") for index in range(32)])
    assert full.add("new", "1") is full
    assert full.update("new", "1") is full
    assert full.update("k31", "w").to_header().startswith("k31=w,k0=v")


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

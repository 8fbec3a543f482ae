"""Root decisions by rule, by journey, under rate limits; children follow their parent.

Runs in-process on a local ``TracerProvider`` (not the global one) with seeded ids,
so every decision is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import baggage, context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from threadline.sampling_rules import journey_random, parse, sampled_by_ratio
from threadline.sdk.sampling.rule_sampler import RuleSampler

from .clock import ManualClock


class SeededIds(IdGenerator):
    """Reproducible trace and span ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


class Harness:
    def __init__(self, sampler: RuleSampler, seed: int = 7) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            sampler=ParentBased(root=sampler), id_generator=SeededIds(seed)
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def root(
        self,
        name: str = "GET /x",
        attributes: dict[str, str] | None = None,
        ctx: Context | None = None,
    ) -> tuple[int, bool]:
        """Start and end a root span; returns (trace id, sampled)."""
        with self.tracer.start_as_current_span(name, context=ctx, attributes=attributes) as span:
            span_context = span.get_span_context()
            return span_context.trace_id, span_context.trace_flags.sampled


def _with_baggage(**entries: str) -> Context:
    ctx = Context()
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return ctx


@contextmanager
def _attached(ctx: Context) -> Iterator[None]:
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def test_with_no_rules_every_trace_is_sampled() -> None:
    """Zero configuration keeps today's behaviour: everything is recorded."""
    harness = Harness(RuleSampler("svc"))
    assert all(harness.root()[1] for _ in range(50))


def test_a_probability_keeps_that_share_decided_by_the_trace_ids_random_bits() -> None:
    """p=0.25 keeps about a quarter, and exactly those whose low 56 bits fall under the bound."""
    harness = Harness(RuleSampler("svc", parse({"default": {"probability": 0.25}})))
    results = [harness.root() for _ in range(2000)]
    kept = sum(sampled for _, sampled in results)
    assert 400 <= kept <= 600
    assert all(sampled == sampled_by_ratio(trace_id, 0.25) for trace_id, sampled in results)


def test_the_decision_agrees_with_opentelemetry_ratio_sampling_where_both_are_defined() -> None:
    """Every service, Threadline or not, that samples on the trace id's low bits agrees at p=0/1."""
    harness = Harness(RuleSampler("svc", parse({"default": {"probability": 0.0}})))
    other = TraceIdRatioBased(0.0)
    for _ in range(100):
        trace_id, sampled = harness.root()
        assert sampled == other.should_sample(None, trace_id, "x").decision.is_sampled()


def test_the_first_matching_rule_decides() -> None:
    """/health is never kept while everything else is; route, method and attributes select."""
    rules = parse(
        {
            "rules": [
                {"route": "/health", "probability": 0.0},
                {"method": "POST", "attributes": {"tenant": "vip"}, "probability": 1.0},
                {"method": "POST", "probability": 0.0},
            ]
        }
    )
    harness = Harness(RuleSampler("svc", rules))
    assert not harness.root("GET /health")[1]
    assert not harness.root("GET", {"http.route": "/health"})[1]
    assert harness.root("POST /orders", {"tenant": "vip"})[1]
    assert not harness.root("POST /orders", {"tenant": "other"})[1]
    assert harness.root("GET /orders")[1]


def test_rules_for_another_service_do_not_apply() -> None:
    """A rule naming service "billing" leaves service "web" on the default."""
    rules = parse({"rules": [{"service": "billing", "probability": 0.0}]})
    assert Harness(RuleSampler("web", rules)).root()[1]
    assert not Harness(RuleSampler("billing", rules)).root()[1]


def test_rules_of_another_environment_do_not_apply() -> None:
    """The same document samples everything in staging and nothing in production."""
    rules = parse(
        {
            "rules": [{"environment": "staging", "probability": 1.0}],
            "default": {"probability": 0.0},
        }
    )
    assert Harness(RuleSampler("web", rules, environment="staging")).root()[1]
    assert not Harness(RuleSampler("web", rules, environment="production")).root()[1]


def test_sampled_spans_keep_their_start_attributes() -> None:
    """The sampler hands the attributes back, so a sampled span loses none of them."""
    harness = Harness(RuleSampler("svc"))
    harness.root("GET /x", {"http.route": "/x", "tenant": "a"})
    (span,) = harness.exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"http.route": "/x", "tenant": "a"}


def test_debug_journeys_are_always_sampled() -> None:
    """threadline.debug=1 or a journey.id in baggage overrides even a probability of 0."""
    harness = Harness(RuleSampler("svc", parse({"default": {"probability": 0.0}})))
    assert not harness.root()[1]
    assert harness.root(ctx=_with_baggage(**{"threadline.debug": "1"}))[1]
    assert harness.root(ctx=_with_baggage(**{"journey.id": "synthetic-42"}))[1]
    assert not harness.root(ctx=_with_baggage(**{"threadline.debug": "0"}))[1]


def test_journey_rules_keep_or_drop_a_whole_journey() -> None:
    """By session id, every trace of a journey gets the same decision, whatever its trace id."""
    rules = parse({"default": {"probability": 0.5, "by": "journey"}})
    harness = Harness(RuleSampler("svc", rules))
    outcomes = {}
    for n in range(40):
        session = f"session-{n}"
        decisions = {
            harness.root(ctx=_with_baggage(**{"session.id": session}))[1] for _ in range(5)
        }
        assert decisions == {sampled_by_ratio(journey_random(session), 0.5)}
        outcomes[session] = decisions.pop()
    assert 10 <= sum(outcomes.values()) <= 30  # both outcomes occur


def test_a_journey_rule_without_a_session_falls_back_to_the_trace_id() -> None:
    """Requests outside any journey are still sampled, by trace id."""
    harness = Harness(RuleSampler("svc", parse({"default": {"probability": 0.5, "by": "journey"}})))
    results = [harness.root() for _ in range(200)]
    assert all(s == sampled_by_ratio(t, 0.5) for t, s in results)


def test_a_rate_limit_caps_traces_per_second_over_time() -> None:
    """max_per_second=2: a burst of ten keeps two, and each later second two more."""
    clock = ManualClock()
    rules = parse({"rules": [{"route": "/busy", "max_per_second": 2}]})
    harness = Harness(RuleSampler("svc", rules, clock=clock))
    assert sum(harness.root("GET /busy")[1] for _ in range(10)) == 2
    for _ in range(5):
        clock.advance(1.0)
        assert sum(harness.root("GET /busy")[1] for _ in range(10)) == 2
    # Other routes are not limited by that rule.
    assert sum(harness.root("GET /calm")[1] for _ in range(10)) == 10


def test_children_follow_the_parent_decision_never_the_rules() -> None:
    """Inside ParentBased, a span with a (remote) parent keeps its parent's flag: no half traces."""
    harness = Harness(RuleSampler("svc", parse({"default": {"probability": 0.0}})))
    for flags, expected in ((TraceFlags.SAMPLED, True), (TraceFlags.DEFAULT, False)):
        parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(flags))
        ctx = set_span_in_context(NonRecordingSpan(parent))
        with (
            _attached(ctx),
            harness.tracer.start_as_current_span("server") as server,
            harness.tracer.start_as_current_span("child") as child,
        ):
            assert server.get_span_context().trace_flags.sampled is expected
            assert child.get_span_context().trace_flags.sampled is expected


def test_updated_rules_apply_from_the_next_span() -> None:
    """A new rule set takes effect without restarting anything."""
    sampler = RuleSampler("svc")
    harness = Harness(sampler)
    assert harness.root()[1]
    sampler.update(parse({"default": {"probability": 0.0}}))
    assert not harness.root()[1]
    assert sampler.rules.default.probability == 0.0


def test_rules_that_keep_everything_still_pass_on_attributes_and_trace_state() -> None:
    """When no rule can drop a trace, the decision still carries the start attributes and
    the parent's tracestate, as a rule-by-rule decision would."""
    from opentelemetry.trace.span import TraceState

    sampler = RuleSampler("svc", parse({"rules": [{"name": "GET *", "probability": 1.0}]}))
    state = TraceState([("vendor", "v1")])
    parent = NonRecordingSpan(
        SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(0), trace_state=state)
    )
    result = sampler.should_sample(
        set_span_in_context(parent), 0xAB, "GET /x", attributes={"http.route": "/x"}
    )
    assert result.decision.is_sampled()
    assert dict(result.attributes) == {"http.route": "/x"}
    assert result.trace_state == state

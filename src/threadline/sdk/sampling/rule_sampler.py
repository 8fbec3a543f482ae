"""The root sampler: first matching rule, by trace or by journey, under a rate limit.

It sits inside ``ParentBased``, so it only decides for spans that start a trace;
every other span follows its parent, and a trace is never half sampled. For a root
span it:

1. samples journeys marked for debugging: baggage ``threadline.debug=1`` or a
   ``journey.id`` (synthetic and test journeys carry one);
2. takes the first rule matching the service, the span name / ``http.route``, the
   ``http.request.method`` and attributes known at start, else the default rule;
3. compares 56 random bits with the rule's probability: the trace id's low 56 bits
   (W3C Trace Context Level 2 randomness, as ``TraceIdRatioBased`` does), or for a
   ``by = "journey"`` rule a hash of the baggage ``session.id``, so every trace of
   a sampled journey is kept in every service and an unsampled journey costs nothing;
4. spends a token of the rule's bucket when the rule has ``max_per_second``.

Rules for other services are removed when rules are installed, not per span; a new
rule set (from the poller) replaces the old one in one assignment. When every rule in
force samples everything without a limit (the default: no rules at all), the decision
is known at install time and a root span costs what ``ALWAYS_ON`` costs: no baggage
read, no rule matching (this runs on the host's thread for every root span).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from threadline.conventions import JOURNEY_ID, JOURNEY_SYNTHETIC, SESSION_ID
from threadline.sampling_rules import (
    HeadRule,
    Match,
    SampleBy,
    SamplingRules,
    journey_random,
    sampled_by_ratio,
    trace_random,
)
from threadline.sdk.guard import report_internal_error
from threadline.sdk.sampling.token_bucket import Clock, TokenBucket

DEBUG_BAGGAGE_KEY: Final = "threadline.debug"
_DEBUG_VALUES: Final = frozenset({"1", "true", "yes", "on"})
_NO_ATTRIBUTES: Final[Mapping[str, object]] = {}


@dataclass(frozen=True, slots=True)
class _Installed:
    """Rules for this service, each with what a root span is matched against and its
    bucket (None when it has no limit)."""

    rules: SamplingRules
    # (match, rule, bucket) in rule order. The match drops the ``service`` pattern:
    # ``for_service`` already kept only rules for this service, so it is not re-checked
    # for every root span.
    entries: tuple[tuple[Match, HeadRule, TokenBucket | None], ...]
    default_bucket: TokenBucket | None
    # Every rule (default included) keeps every trace, unlimited: any match samples.
    samples_all: bool


class RuleSampler(Sampler):
    """Decides for root spans of ``service`` by the current :class:`SamplingRules`."""

    def __init__(
        self,
        service: str,
        rules: SamplingRules | None = None,
        clock: Clock = time.monotonic,
        environment: str = "",
    ) -> None:
        self._service = service
        self._environment = environment
        self._clock = clock
        self._installed = self._install(rules or SamplingRules())

    @property
    def rules(self) -> SamplingRules:
        """The rules in force (already narrowed to this service and environment)."""
        return self._installed.rules

    @property
    def samples_all(self) -> bool:
        """Whether the rules in force keep every root span, unlimited (no rules: True)."""
        return self._installed.samples_all

    def update(self, rules: SamplingRules) -> None:
        """Apply a new rule set from the next span on; rate limits start afresh."""
        self._installed = self._install(rules)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        # The SDK gives the span the attributes returned here, so they are passed on.
        if self._installed.samples_all:
            return SamplingResult(
                Decision.RECORD_AND_SAMPLE, attributes, _parent_trace_state(parent_context)
            )
        try:
            sampled = self._decide(parent_context, trace_id, name, attributes or _NO_ATTRIBUTES)
        except Exception:
            # Never into the host: a failing rule records the trace rather than lose it.
            report_internal_error("sampling")
            sampled = True
        if not sampled:
            return SamplingResult(Decision.DROP, None, _parent_trace_state(parent_context))
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE, attributes, _parent_trace_state(parent_context)
        )

    def get_description(self) -> str:
        return f"ThreadlineRuleSampler{{service={self._service}}}"

    def _decide(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        attributes: Mapping[str, object],
    ) -> bool:
        entries = baggage.get_all(parent_context)
        if entries and _is_debug(entries):
            return True
        installed = self._installed
        rule, bucket = _first_match(installed, self._service, name, attributes)
        random_value = trace_random(trace_id)
        if rule.by is SampleBy.JOURNEY and entries:
            session_id = entries.get(SESSION_ID)
            if session_id is not None:
                random_value = journey_random(str(session_id))
        if not sampled_by_ratio(random_value, rule.probability):
            return False
        return bucket is None or bucket.take()

    def _install(self, rules: SamplingRules) -> _Installed:
        narrowed = rules.for_service(self._service, self._environment)
        return _Installed(
            narrowed,
            tuple(
                (replace(rule.match, service=None), rule, self._bucket(rule))
                for rule in narrowed.rules
            ),
            self._bucket(narrowed.default),
            all(_keeps_everything(rule) for rule in (*narrowed.rules, narrowed.default)),
        )

    def _bucket(self, rule: HeadRule) -> TokenBucket | None:
        if rule.max_per_second is None:
            return None
        return TokenBucket(rule.max_per_second, self._clock)


def _first_match(
    installed: _Installed, service: str, name: str, attributes: Mapping[str, object]
) -> tuple[HeadRule, TokenBucket | None]:
    for match, rule, bucket in installed.entries:
        if match.matches(service, name, attributes):
            return rule, bucket
    return installed.rules.default, installed.default_bucket


def _keeps_everything(rule: HeadRule) -> bool:
    return rule.probability >= 1.0 and rule.max_per_second is None


def _is_debug(entries: Mapping[str, object]) -> bool:
    flag = entries.get(DEBUG_BAGGAGE_KEY)
    if flag is not None and str(flag).strip().lower() in _DEBUG_VALUES:
        return True
    # A synthetic journey exists to be seen: a probe that was sampled away would fail.
    synthetic = entries.get(JOURNEY_SYNTHETIC)
    if synthetic is not None and str(synthetic).strip().lower() in _DEBUG_VALUES:
        return True
    return entries.get(JOURNEY_ID) is not None


def _parent_trace_state(parent_context: Context | None) -> TraceState | None:
    parent = get_current_span(parent_context).get_span_context()
    return parent.trace_state if parent.is_valid else None

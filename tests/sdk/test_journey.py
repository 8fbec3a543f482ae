"""journey(): baggage for a block or function, stamped on spans, with pseudonymous user ids."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import threadline
from threadline.sdk import setup
from threadline.sdk.journey import current_journey
from threadline.sdk.pseudonym import Pseudonymizer, is_pseudonym

from .collector import Collector
from .conftest import ScenarioRunner


def test_keys_are_in_baggage_inside_and_gone_after() -> None:
    """Inside the block the journey keys are current baggage; on exit the previous context
    returns."""
    with threadline.journey(session_id="s-1", journey_id="j-1"):
        assert current_journey() == {"session.id": "s-1", "journey.id": "j-1"}
    assert current_journey() == {}


def test_merges_with_existing_baggage() -> None:
    """A nested journey adds keys to the baggage already current, keeping unrelated entries."""
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with threadline.journey(session_id="s-1"), threadline.journey(journey_id="j-2"):
            assert baggage.get_all() == {"tenant": "acme", "session.id": "s-1", "journey.id": "j-2"}
        assert baggage.get_all() == {"tenant": "acme"}
    finally:
        context.detach(token)


def test_user_id_enters_baggage_pseudonymised() -> None:
    """The raw user id never reaches baggage (and so never leaves the process)."""
    with threadline.journey(user_id="alice@example.com"):
        user = current_journey()["user.id"]
    assert is_pseudonym(user)
    assert user == setup.active_pseudonymizer()("alice@example.com")


def test_decorates_sync_and_async_functions() -> None:
    """As a decorator it applies to each call of a function or coroutine function, and only during
    it."""

    @threadline.journey(session_id="s-sync")
    def sync_call() -> dict[str, str]:
        return current_journey()

    @threadline.journey(session_id="s-async")
    async def async_call() -> dict[str, str]:
        await asyncio.sleep(0)
        return current_journey()

    assert sync_call() == {"session.id": "s-sync"}
    assert asyncio.run(async_call()) == {"session.id": "s-async"}
    assert sync_call.__name__ == "sync_call"
    assert current_journey() == {}


def test_async_context_manager_and_reuse() -> None:
    """One journey object works with `async with` and can be entered again after it exits."""
    shop = threadline.journey(session_id="s-reuse")

    async def visit() -> dict[str, str]:
        async with shop:
            return current_journey()

    assert asyncio.run(visit()) == {"session.id": "s-reuse"}
    with shop, shop:
        assert current_journey() == {"session.id": "s-reuse"}
    assert current_journey() == {}


def test_refuses_generators() -> None:
    """Decorating a generator is refused, since its context would leak into the caller between
    yields."""
    with pytest.raises(TypeError, match="not generators"):

        @threadline.journey(session_id="s")
        def numbers() -> object:
            yield 1


def test_stamps_the_current_recording_span() -> None:
    """A span already running when the journey starts gets the journey keys too."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with (
        provider.get_tracer("test").start_as_current_span("request"),
        threadline.journey(session_id="s-late", journey_id="j-late"),
    ):
        pass
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"session.id": "s-late", "journey.id": "j-late"}


def test_non_string_ids_do_not_raise() -> None:
    """An int user id (a common mistake) is used as its text rather than breaking the caller."""
    with threadline.journey(user_id=42, session_id=""):  # type: ignore[arg-type]
        assert current_journey() == {"user.id": setup.active_pseudonymizer()("42")}


def test_sync_and_async_journeys_reach_exported_spans(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """Spans started inside decorated functions and nested journeys are exported with the journey
    keys."""
    result = run_scenario("journey_functions", env={"THREADLINE_USER_ID_KEY": "k1"})
    bob = Pseudonymizer("k1")("bob")
    assert result.output == {
        "sync": {"session.id": "s-sync", "user.id": bob},
        "async": {"session.id": "s-async", "user.id": bob},
        "merged": {"session.id": "s-outer", "journey.id": "j-1"},
        "after": {},
    }
    attributes = {s.name: s.attributes for s in collector.spans}
    assert attributes["sync-work"] == {"session.id": "s-sync", "user.id": bob}
    assert attributes["async-work"] == {"session.id": "s-async", "user.id": bob}
    # The nested journey started while "outer" was current, so it stamped "outer" as well.
    assert attributes["outer"] == {"session.id": "s-outer", "journey.id": "j-1"}
    assert attributes["merged"] == {"session.id": "s-outer", "journey.id": "j-1"}


def _exported_user_ids(collector: Collector) -> set[object]:
    return {s.attributes.get("user.id") for s in collector.spans if s.name == "sync-work"}


def test_pseudonym_is_stable_across_processes_and_keyed(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """Two processes with the same key stamp the same user.id; another key gives another one."""
    run_scenario("journey_functions", env={"THREADLINE_USER_ID_KEY": "k1"})
    run_scenario("journey_functions", env={"THREADLINE_USER_ID_KEY": "k1"})
    assert _exported_user_ids(collector) == {Pseudonymizer("k1")("bob")}
    run_scenario("journey_functions", env={"THREADLINE_USER_ID_KEY": "k2"})
    assert _exported_user_ids(collector) == {Pseudonymizer("k1")("bob"), Pseudonymizer("k2")("bob")}


def test_raw_user_id_when_pseudonymising_is_off(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """THREADLINE_PSEUDONYMIZE_USER_ID=false keeps user ids as given."""
    run_scenario("journey_functions", env={"THREADLINE_PSEUDONYMIZE_USER_ID": "false"})
    assert _exported_user_ids(collector) == {"bob"}


def test_missing_key_warns_once_naming_the_setting(run_scenario: ScenarioRunner) -> None:
    """Without a key, pseudonymising still happens and one warning asks for
    THREADLINE_USER_ID_KEY."""
    result = run_scenario("journey_functions")
    assert is_pseudonym(result.output["sync"]["user.id"])
    assert result.stderr.count("THREADLINE_USER_ID_KEY") == 1


def test_tracer_provider_untouched_by_in_process_tests() -> None:
    """In-process journey tests never install a global provider (scenarios do that in
    subprocesses)."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

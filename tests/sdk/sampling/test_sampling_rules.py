"""The rule document: parsing, validation naming the bad field, matching, TOML, ETags."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.sampling_rules import (
    HeadRule,
    Match,
    RuleError,
    SampleBy,
    SamplingRules,
    configured_rules,
    journey_random,
    parse,
    parse_json,
    sampled_by_ratio,
)

DOCUMENT = {
    "rules": [
        {
            "name": "payments",
            "service": "checkout",
            "route": "/api/pay*",
            "method": "post",
            "attributes": {"tenant": "acme-*"},
            "probability": 1.0,
            "max_per_second": 5,
        },
        {"name": "health", "route": "/health", "probability": 0.0},
        {"name": "journeys", "service": "web*", "probability": 0.2, "by": "journey"},
    ],
    "default": {"probability": 0.1},
    "tail": {"keep": [{"service": "payments"}], "latency_ms": {"GET /slow*": 250}},
}


def test_a_document_parses_and_round_trips_through_json() -> None:
    """What the API serves parses back to the same rules, so an SDK sees what was PUT."""
    rules = parse(DOCUMENT)
    assert rules.rules[0] == HeadRule(
        Match("checkout", "/api/pay*", "POST", (("tenant", "acme-*"),)),
        1.0,
        5.0,
        SampleBy.TRACE,
        "payments",
    )
    assert rules.rules[2].by is SampleBy.JOURNEY
    assert rules.default.probability == 0.1
    assert rules.tail.threshold_ms("GET /slow/report", 1000.0) == 250.0
    assert rules.tail.threshold_ms("GET /fast", 1000.0) == 1000.0
    assert parse(rules.to_json()) == rules


def test_an_empty_document_samples_everything() -> None:
    """With no rules configured every trace is kept, as before sampling existed."""
    rules = parse({})
    assert rules == SamplingRules()
    assert rules.first_match("svc", "GET /x", {}).probability == 1.0


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": [{"probability": 1.5}]}, "rules[0].probability"),
        ({"rules": [{}, {"probability": "half"}]}, "rules[1].probability"),
        ({"rules": [{"max_per_second": 0}]}, "rules[0].max_per_second"),
        ({"rules": [{"by": "user"}]}, "rules[0].by"),
        ({"rules": [{"servce": "x"}]}, "rules[0].servce"),
        ({"rules": [{"attributes": {"k": 1}}]}, "rules[0].attributes.k"),
        ({"rules": [{"route": ""}]}, "rules[0].route"),
        ({"rules": {"a": 1}}, "rules"),
        ({"default": {"service": "x"}}, "default.service"),
        ({"tail": {"latency_ms": {"GET /": -1}}}, "tail.latency_ms.GET /"),
        ({"tail": {"keep": [{"probability": 1}]}}, "tail.keep[0].probability"),
        ({"extra": 1}, "extra"),
        ([], "sampling"),
    ],
)
def test_invalid_documents_name_the_bad_field(document: object, field: str) -> None:
    """A bad rule is rejected with the path of the value at fault, never half applied."""
    with pytest.raises(RuleError) as caught:
        parse(document)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_invalid_json_is_a_rule_error() -> None:
    """A body that is not JSON at all is reported as such."""
    with pytest.raises(RuleError, match=r"^body: is not valid JSON"):
        parse_json(b"{rules: []")


def test_first_matching_rule_wins_and_the_default_catches_the_rest() -> None:
    """Rules are tried in order; route, method and attribute patterns must all match."""
    rules = parse(DOCUMENT)
    pay = {"http.request.method": "POST", "tenant": "acme-eu"}
    assert rules.first_match("checkout", "POST /api/pay/card", pay).name == "payments"
    # Same route, other tenant: falls through to the default.
    other = {"http.request.method": "POST", "tenant": "globex"}
    assert rules.first_match("checkout", "POST /api/pay/card", other).name == "default"
    # Method from the span name when the attribute is absent; GET does not match POST.
    assert rules.first_match("checkout", "GET /api/pay", {"tenant": "acme-1"}).name == "default"
    assert rules.first_match("checkout", "POST /api/pay", {"tenant": "acme-1"}).name == "payments"
    # Route from http.route when the span name is generic.
    assert rules.first_match("any", "GET", {"http.route": "/health"}).name == "health"
    assert rules.first_match("web-shop", "GET /", {}).name == "journeys"


def test_rules_for_other_services_are_left_out_once() -> None:
    """A service keeps only the rules that can match it, so spans never test the others."""
    narrowed = parse(DOCUMENT).for_service("web-1")
    assert [r.name for r in narrowed.rules] == ["health", "journeys"]


def test_environment_rules_apply_only_in_their_environment() -> None:
    """One rule document traces staging fully and production by rule, without code changes."""
    rules = parse(
        {
            "rules": [
                {"name": "staging", "environment": "staging", "probability": 1.0},
                {"name": "prod", "environment": "prod*", "probability": 0.05},
            ],
            "default": {"probability": 0.5},
        }
    )
    assert parse(rules.to_json()) == rules
    staging = rules.for_service("web", environment="staging")
    production = rules.for_service("web", environment="production")
    assert staging.first_match("web", "GET /", {}).name == "staging"
    assert production.first_match("web", "GET /", {}).name == "prod"
    assert rules.for_service("web", environment="dev").first_match("web", "GET /", {}).name == (
        "default"
    )
    with pytest.raises(RuleError, match=r"tail\.keep\[0\]"):
        parse({"tail": {"keep": [{"environment": "staging"}]}})


def test_the_etag_follows_the_content() -> None:
    """Equal documents have equal tags and any change gives a new one (for If-None-Match)."""
    assert parse(DOCUMENT).etag() == parse(parse(DOCUMENT).to_json()).etag()
    changed = {**DOCUMENT, "default": {"probability": 0.2}}
    assert parse(changed).etag() != parse(DOCUMENT).etag()


def test_the_ratio_uses_the_low_56_bits() -> None:
    """Trace-id randomness is the W3C Level 2 random part: the low 56 bits decide alone."""
    high_bits = 0xFFFF_FFFF_FFFF_FFFF_FF00_0000_0000_0000
    assert sampled_by_ratio(high_bits, 0.01)  # random part 0: under any bound above 0
    assert not sampled_by_ratio((1 << 56) - 1, 0.99)
    assert not sampled_by_ratio(0, 0.0)
    assert sampled_by_ratio((1 << 56) - 1, 1.0)


def test_journey_randomness_is_the_same_everywhere() -> None:
    """Every service derives the same bits from a session id, so they agree on a journey."""
    assert journey_random("s-1") == journey_random("s-1")
    assert journey_random("s-1") != journey_random("s-2")
    assert 0 <= journey_random("s-1") < 1 << 56


def test_rules_load_from_the_sampling_table_of_threadline_toml(tmp_path: Path) -> None:
    """[sampling] with [[sampling.rules]] in threadline.toml configures the same rules."""
    config = tmp_path / "threadline.toml"
    config.write_text(
        """
[sdk]
service_name = "checkout"

[sampling]
default = { probability = 0.5 }

[[sampling.rules]]
name = "pay"
route = "/pay"
probability = 1.0
max_per_second = 10

[sampling.tail]
latency_ms = { "GET /pay" = 300 }
""",
        encoding="utf-8",
    )
    rules = configured_rules("", {"THREADLINE_CONFIG": str(config)})
    assert rules is not None
    assert [r.name for r in rules.rules] == ["pay"]
    assert rules.rules[0].max_per_second == 10.0
    assert rules.default.probability == 0.5
    assert rules.tail.latency_ms == (("GET /pay", 300.0),)


def test_a_bad_rule_in_threadline_toml_names_the_table_and_field(tmp_path: Path) -> None:
    """A mistake in the file says where it is, like every other setting."""
    config = tmp_path / "threadline.toml"
    config.write_text("[[sampling.rules]]\nprobability = 2\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"\[sampling\] rules\[0\]\.probability in .*threadline"):
        configured_rules("", {"THREADLINE_CONFIG": str(config)})


def test_no_rules_anywhere_is_none(tmp_path: Path) -> None:
    """Without a rules file or [sampling] table the caller's defaults apply."""
    config = tmp_path / "threadline.toml"
    config.write_text('[sdk]\nservice_name = "x"\n', encoding="utf-8")
    assert configured_rules("", {"THREADLINE_CONFIG": str(config)}) is None


def test_a_rules_file_may_be_json(tmp_path: Path) -> None:
    """sampling_rules_file accepts the same JSON document the API serves."""
    path = tmp_path / "rules.json"
    path.write_text('{"default": {"probability": 0.25}}', encoding="utf-8")
    rules = configured_rules(str(path), {})
    assert rules is not None
    assert rules.default.probability == 0.25

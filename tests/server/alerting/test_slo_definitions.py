"""SLO documents: the issue's example parses, and each bad value is named by its path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from threadline.slos import Indicator, SloError, load_toml, parse, parse_json

EXAMPLE = {
    "slos": [
        {
            "name": "checkout-errors",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.99,
            "window": "30d",
            "indicator": "errors",
        },
        {
            "name": "checkout-fast",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.95,
            "window": "30d",
            "indicator": "latency",
            "threshold": "300ms",
        },
        {
            "name": "checkout-journeys",
            "service": "shop",
            "operation": "POST /checkout",
            "objective": 0.98,
            "window": "7d",
            "indicator": "journey",
        },
        {
            "name": "payments-calls",
            "service": "checkout",
            "callee": "payments",
            "objective": 0.999,
            "window": "30d",
            "indicator": "edge",
            "threshold": "200ms",
        },
    ]
}


def test_the_documented_example_parses_and_round_trips() -> None:
    """Every indicator of the issue's example, and to_json gives the same document back."""
    document = parse(EXAMPLE)
    assert [s.indicator for s in document.slos] == list(Indicator)
    assert document.slos[1].threshold_ns == 300_000_000
    assert document.slos[0].window_ns == 30 * 86_400 * 1_000_000_000
    assert document.to_json() == EXAMPLE
    assert parse(document.to_json()).etag() == document.etag()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"objective": 1.0}, "slos[0].objective"),
        ({"objective": "high"}, "slos[0].objective"),
        ({"window": "30"}, "slos[0].window"),
        ({"window": "200d"}, "slos[0].window"),
        ({"indicator": "uptime"}, "slos[0].indicator"),
        ({"name": "has space"}, "slos[0].name"),
        ({"service": ""}, "slos[0].service"),
        ({"threshold": "300ms"}, "slos[0].threshold"),
        ({"callee": "payments"}, "slos[0].callee"),
        ({"colour": "red"}, "slos[0].colour"),
        ({"min_events": -1}, "slos[0].min_events"),
        ({"max_retry_share": 0.2}, "slos[0].max_retry_share"),
        ({"include_synthetic": "yes"}, "slos[0].include_synthetic"),
        ({"reaches": "POST /pay"}, "slos[0].reaches"),
    ],
)
def test_a_bad_value_is_named_by_its_path(change: dict[str, object], field: str) -> None:
    """The error names the field, so the API's 400 can say which value to fix."""
    slo = {**EXAMPLE["slos"][0], **change}
    with pytest.raises(SloError) as caught:
        parse({"slos": [slo]})
    assert caught.value.field == field


def test_latency_needs_a_threshold_and_edges_a_callee() -> None:
    """An indicator missing what it measures is refused naming the missing key."""
    latency = {k: v for k, v in EXAMPLE["slos"][1].items() if k != "threshold"}
    with pytest.raises(SloError, match=r"slos\[0\].threshold"):
        parse({"slos": [latency]})
    edge = {k: v for k, v in EXAMPLE["slos"][3].items() if k != "callee"}
    with pytest.raises(SloError, match=r"slos\[0\].callee"):
        parse({"slos": [edge]})


def test_a_funnel_step_slo_is_a_journey_slo_with_the_step_before() -> None:
    """``reaches`` names the step a journey should go on to after ``operation``; it
    round-trips, and without the step before it is refused naming ``operation``."""
    step = {**EXAMPLE["slos"][2], "name": "pay-conversion", "reaches": "POST /pay"}
    [slo] = parse({"slos": [step]}).slos
    assert (slo.operation, slo.reaches) == ("POST /checkout", "POST /pay")
    assert slo.to_json() == step
    without = {k: v for k, v in step.items() if k != "operation"}
    with pytest.raises(SloError, match=r"slos\[0\].operation: a funnel step SLO needs"):
        parse({"slos": [without]})


def test_names_are_unique_and_json_must_parse() -> None:
    """Two SLOs of one name, and a body that is not JSON, are refused."""
    with pytest.raises(SloError, match=r"slos\[1\].name"):
        parse({"slos": [EXAMPLE["slos"][0], EXAMPLE["slos"][0]]})
    with pytest.raises(SloError, match="body"):
        parse_json(b"{not json")
    assert parse_json(json.dumps(EXAMPLE)).slos[3].callee == "payments"


def test_slo_tables_in_threadline_toml(tmp_path: Path) -> None:
    """``[[slo]]`` tables hold the same keys; an error names the table and the file."""
    config = tmp_path / "threadline.toml"
    config.write_text(
        '[[slo]]\nname = "checkout-errors"\nservice = "shop"\nobjective = 0.99\n'
        'window = "30d"\nindicator = "errors"\n'
    )
    loaded = load_toml(config)
    assert loaded is not None
    assert loaded.slos[0].name == "checkout-errors"
    config.write_text(
        '[[slo]]\nname = "x"\nservice = "shop"\nobjective = 2\nwindow = "30d"\n'
        'indicator = "errors"\n'
    )
    with pytest.raises(SloError, match=r"\[\[slo\]\] slo\[0\].objective in .*threadline.toml"):
        load_toml(config)
    (tmp_path / "empty.toml").write_text("[server]\n")
    assert load_toml(tmp_path / "empty.toml") is None


def test_the_toml_examples_of_docs_alerting_load(tmp_path: Path) -> None:
    """Each ``[[slo]]`` block of docs/alerting.md loads as written, the funnel step too."""
    page = Path(__file__).resolve().parents[3] / "docs" / "alerting.md"
    blocks = re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    loaded = []
    for n, block in enumerate(b for b in blocks if "[[slo]]" in b):
        config = tmp_path / f"example{n}.toml"
        config.write_text(block, encoding="utf-8")
        document = load_toml(config)
        assert document is not None
        loaded += document.slos
    reaches = [(s.operation, s.reaches) for s in loaded if s.reaches is not None]
    assert reaches == [("POST /checkout", "POST /pay")]

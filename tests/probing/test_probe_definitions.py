"""Scheduled probe documents: defaults, the plan they carry, the document read back as
written, and bad values refused naming their path."""

from __future__ import annotations

import json

import pytest

from threadline.probing.definitions import ProbeDefinitionError, parse, parse_json

PROBE = {
    "name": "checkout",
    "interval": "1m",
    "services": ["checkout", "payments"],
    "steps": [{"name": "pay", "method": "post", "url": "http://127.0.0.1:9/pay", "budget": "1s"}],
}


def test_a_probe_carries_its_plan_and_defaults() -> None:
    """Interval and wait in ns, alert_after 1, the plan named after the probe."""
    (probe,) = parse({"probes": [PROBE]}).probes
    assert (probe.interval_ns, probe.wait_ns, probe.alert_after) == (60 * 10**9, 15 * 10**9, 1)
    assert probe.plan.name == "checkout"
    assert probe.plan.services == ("checkout", "payments")
    assert (probe.plan.steps[0].method, probe.plan.steps[0].budget_ns) == ("POST", 10**9)


def test_the_document_reads_back_as_written_and_changing_it_changes_nothing() -> None:
    """``to_json`` gives what was sent (defaults left out); the copy is the caller's."""
    document = parse({"probes": [PROBE, {"name": "b", "interval": "5s", "url": "http://a/"}]})
    written = document.to_json()
    assert written == {"probes": [PROBE, {"name": "b", "interval": "5s", "url": "http://a/"}]}
    written["probes"][0]["steps"][0]["url"] = "http://elsewhere/"
    assert document.to_json()["probes"][0]["steps"][0]["url"] == "http://127.0.0.1:9/pay"
    assert parse(document.to_json()).etag() == document.etag()


def one(**keys: object) -> str:
    """A document of one probe ``a`` every minute to ``http://a/``, with ``keys`` set."""
    return json.dumps({"probes": [{"name": "a", "interval": "1m", "url": "http://a/", **keys}]})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"probes": {}}', "probes"),
        ('{"probes": [1]}', "probes[0]"),
        (one(name="../x"), "probes[0].name"),
        (one(interval=None), "probes[0].interval"),
        (one(interval="2d"), "probes[0].interval"),
        (one(wait="10m"), "probes[0].wait"),
        (one(alert_after=True), "probes[0].alert_after"),
        (one(steps=[]), "probes[0].url"),
        (one(services="x"), "probes[0].services"),
        (one(url=None), "probes[0].url"),
        (
            json.dumps(
                {
                    "probes": [
                        {"name": "a", "interval": "1m", "steps": [{"url": "http://a/", "x": 1}]}
                    ]
                }
            ),
            "probes[0].steps[1].x",
        ),
        ("[]", "body"),
        ("nope", "body"),
    ],
)
def test_bad_values_are_refused_naming_their_path(text: str, field: str) -> None:
    with pytest.raises(ProbeDefinitionError) as raised:
        parse_json(text)
    assert raised.value.field == field

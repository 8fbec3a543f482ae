"""``/api/journeys/map`` and ``/api/funnels`` on a real server over scripted shoppers.

The shoppers (``support.journey_script``) carry a planted cause: a payments error at
checkout makes them leave; the funnel must name it first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from support.journey_script import FUNNEL, WINDOW_END_MS, shoppers
from support.live_server import live_server
from threadline.server.batch import SpanBatch

WINDOW: Final = f"window=1h&end={WINDOW_END_MS}"
DOCUMENT: Final = {"funnels": [{"name": "checkout", "steps": list(FUNNEL)}]}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("journeys") / "spans.duckdb"
    with live_server(db) as live:
        live.store.write(SpanBatch.from_records(shoppers())).result(timeout=60)
        yield live.api_url


def get(url: str) -> Any:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_map_shows_the_scripted_transitions(api: str) -> None:
    """Transitions and stopped-here counts match the script; no user id is in the answer."""
    found = get(f"{api}/journeys/map?{WINDOW}")
    moves = {(t["source"], t["target"]): t["count"] for t in found["transitions"]}
    assert moves == {
        ("web GET /product", "web POST /cart"): 190,
        ("web POST /cart", "web POST /checkout"): 190,
        ("web POST /checkout", "web POST /pay"): 125,
    }
    ended = {s["id"]: s["ended"] for s in found["steps"]}
    assert ended == {
        "web GET /product": 10,
        "web POST /cart": 0,
        "web POST /checkout": 65,
        "web POST /pay": 125,
    }
    checkout = next(s for s in found["steps"] if s["operation"] == "POST /checkout")
    assert checkout["errors"] == 60
    assert checkout["p50_ns"] == 100_000_000
    think = next(t for t in found["transitions"] if t["target"] == "web POST /pay")
    assert abs(think["think_p50_ns"] - 19.9e9) < 0.02 * 19.9e9
    assert "user-" not in str(found)
    assert "shopper-" not in str(found)


def test_the_funnel_converts_and_names_the_payments_error_first(api: str) -> None:
    """PUT a funnel, read its conversion and the cause of the checkout drop-off."""
    put = httpx.put(f"{api}/funnels", json=DOCUMENT, timeout=30)
    assert put.status_code == 200, put.text
    found = get(f"{api}/funnels/checkout?{WINDOW}")
    assert [s["journeys"] for s in found["steps"]] == [200, 190, 190, 125]
    assert found["steps"][3]["conversion"] == pytest.approx(125 / 190)
    assert found["steps"][1]["median_ns"] == pytest.approx(20e9, rel=0.02)
    checkout = found["drop_offs"][2]
    assert (checkout["stopped"], checkout["went_on"]) == (65, 125)
    first = checkout["factors"][0]
    assert (first["kind"], first["service"], first["significant"]) == ("error", "payments", True)
    assert (first["stopped_with"], first["went_on_with"]) == (45, 15)
    assert checkout["headline"] == (
        "journeys that met a payments error at POST /checkout stopped 4.9× as often"
        " (60 journeys in the window)"
    )
    assert len(first["example_traces"]) == 3


def test_the_funnel_names_the_attribute_value_that_goes_with_leaving(api: str) -> None:
    """Trial shoppers stop at checkout 2.4× as often: the value is a significant
    factor after the payments error, with example journeys of trial shoppers that
    stopped; the paid plan (less common among those who stopped) and the journey
    keys are never listed."""
    assert httpx.put(f"{api}/funnels", json=DOCUMENT, timeout=30).status_code == 200
    found = get(f"{api}/funnels/checkout?{WINDOW}")
    checkout = found["drop_offs"][2]
    plans = [f for f in checkout["factors"] if f["kind"] == "attribute"]
    assert [(f["key"], f["value"]) for f in plans] == [("app.plan", "trial")]
    [trial] = plans
    assert (trial["stopped_with"], trial["went_on_with"]) == (20, 10)
    assert trial["significant"]
    assert trial["ratio"] == pytest.approx((20 / 30) / (45 / 160))
    assert trial["text"] == (
        "journeys with app.plan=trial at POST /checkout stopped 2.4× as often"
        " (30 journeys in the window)"
    )
    assert checkout["factors"][0]["service"] == "payments"
    assert checkout["factors"].index(trial) > 0
    # Trial shoppers who stopped at checkout: sessions 70-89, trace of step 3.
    stopped = {f"{session:016x}{2:016x}" for session in range(70, 90)}
    assert len(trial["example_traces"]) == 3
    assert set(trial["example_traces"]) <= stopped
    assert "user-" not in str(found)
    assert "shopper-" not in str(found)


def test_funnel_documents_are_validated_and_versioned(api: str) -> None:
    """A bad document is refused naming the field; a stale If-Match gets 412."""
    bad = httpx.put(f"{api}/funnels", json={"funnels": [{"name": "x", "steps": ["a"]}]})
    assert bad.status_code == 400
    assert bad.json()["field"] == "funnels[0].steps"
    current = httpx.get(f"{api}/funnels")
    etag = current.headers["etag"]
    assert httpx.get(f"{api}/funnels", headers={"If-None-Match": etag}).status_code == 304
    stale = httpx.put(f"{api}/funnels", json=DOCUMENT, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert httpx.get(f"{api}/funnels/nope?{WINDOW}").status_code == 404


def test_an_attribute_filter_chooses_the_journeys_of_trial_shoppers(api: str) -> None:
    """``attr=app.plan=trial`` keeps sessions 70-99 (30 shoppers, 20 stop at checkout)
    in the map and the funnel; a user or session id is refused, never answered."""
    trial = f"{WINDOW}&attr=app.plan=trial"
    found = get(f"{api}/journeys/map?{trial}")
    moves = {(t["source"], t["target"]): t["count"] for t in found["transitions"]}
    assert moves == {
        ("web GET /product", "web POST /cart"): 30,
        ("web POST /cart", "web POST /checkout"): 30,
        ("web POST /checkout", "web POST /pay"): 10,
    }
    assert found["attribute"] == {"key": "app.plan", "value": "trial"}
    assert httpx.put(f"{api}/funnels", json=DOCUMENT, timeout=30).status_code == 200
    funnel = get(f"{api}/funnels/checkout?{trial}")
    assert [s["journeys"] for s in funnel["steps"]] == [30, 30, 30, 10]
    assert funnel["drop_offs"][2]["stopped"] == 20
    for refused in ("user.id=user-3", "session.id=shopper-3", "app.plan"):
        for path in ("journeys/map", "funnels/checkout"):
            answer = httpx.get(f"{api}/{path}?{WINDOW}&attr={refused}", timeout=30)
            assert answer.status_code == 400, answer.text
            assert "user-3" not in answer.text.replace(refused, "")

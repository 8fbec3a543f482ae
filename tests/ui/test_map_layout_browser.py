"""The service map of a 12-service fleet reads at a glance on a desktop and on a phone.

A real server holds a fleet whose calls span several layers, fan in and out, include a
message hop and a cycle; Chromium draws /map at 1400 px and at phone width, and the
test measures what was drawn: no two boxes or edge labels intersect, and no edge
passes through a box other than its own caller's and callee's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord

from .conftest import PHONE, _watched_page

MS: Final = 1_000_000
WIDE: Final = {"width": 1400, "height": 900}
# caller → callee; "message" marks a producer → consumer hop.
CALLS: Final = [
    ("edge-proxy", "gateway"), ("gateway", "accounts"), ("gateway", "catalog"),
    ("gateway", "cart"), ("gateway", "checkout"), ("catalog", "search"),
    ("catalog", "pricing"), ("cart", "pricing"), ("checkout", "payments"),
    ("checkout", "inventory"), ("payments", "fraud-check"), ("checkout", "shipping"),
    ("accounts", "gateway"),  # a cycle
    ("cart", "inventory"),
    ("edge-proxy", "search"),  # skips a layer
]  # fmt: skip
MESSAGES: Final = [("checkout", "shipping")]


def _fleet(now_ns: int) -> list[SpanRecord]:
    spans: list[SpanRecord] = []
    n = 0
    hops = [(caller, callee, False) for caller, callee in CALLS]
    hops += [(caller, callee, True) for caller, callee in MESSAGES]
    for _ in range(3):
        for caller, callee, message in hops:
            n += 1
            start = now_ns + n * 10 * MS
            trace = f"{n:032x}"
            out_kind, in_kind = (SpanKind.PRODUCER, SpanKind.CONSUMER)
            if not message:
                out_kind, in_kind = (SpanKind.CLIENT, SpanKind.SERVER)
            spans += [
                span_record(trace, f"{n:08x}00000001", None, caller, "handle", start,
                            start + 9 * MS, kind=SpanKind.SERVER),
                span_record(trace, f"{n:08x}00000002", f"{n:08x}00000001", caller,
                            f"call {callee}", start + MS, start + 8 * MS, kind=out_kind),
                span_record(trace, f"{n:08x}00000003", f"{n:08x}00000002", callee,
                            "serve", start + 2 * MS, start + 7 * MS, kind=in_kind),
            ]  # fmt: skip
    return spans


# Runs in the page: every box, label and sampled edge point in page coordinates, and
# which boxes each edge may touch (its caller's and callee's).
MEASURE: Final = r"""() => {
  const rect = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  const boxes = [...document.querySelectorAll('#map a.node')].map(
    (a) => ({ name: a.dataset.service, box: rect(a.querySelector('rect')) }));
  const labels = [...document.querySelectorAll('#map .edge-label')].map((t) => rect(t));
  const edges = [...document.querySelectorAll('#map g.edge')].map((g) => {
    const path = g.querySelector('path');
    const m = path.getScreenCTM();
    const length = path.getTotalLength();
    const points = [];
    for (let k = 0; k <= 200; k++) {
      const p = path.getPointAtLength((length * k) / 200);
      points.push([m.a * p.x + m.c * p.y + m.e, m.b * p.x + m.d * p.y + m.f]);
    }
    return { caller: g.dataset.caller, callee: g.dataset.callee, points };
  });
  const drawing = document.querySelector('#map svg');
  const rates = [...document.querySelectorAll('#map .edge-label, #map a.node text.sub')]
    .map((t) => t.textContent).filter((text) => /\/(s|min)/.test(text));
  return { boxes, labels, edges, direction: drawing.dataset.direction,
           width: drawing.getBoundingClientRect().width, rates,
           legend: document.getElementById('map-summary').textContent };
}"""


def _intersects(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(point: list[float], box: list[float], margin: float = 1.0) -> bool:
    x, y = point
    return box[0] + margin < x < box[2] - margin and box[1] + margin < y < box[3] - margin


@pytest.fixture(scope="module")
def fleet_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db: Path = tmp_path_factory.mktemp("fleet") / "spans.duckdb"
    with live_server(db) as live:
        live.store.write(SpanBatch.from_records(_fleet(time.time_ns() - 120_000 * MS))).result()
        yield live.url


@pytest.mark.parametrize(
    ("viewport", "mobile"), [(WIDE, False), (PHONE, True)], ids=["1400px", "phone"]
)
def test_twelve_services_draw_without_overlaps(
    browser: Any, fleet_url: str, viewport: dict[str, int], mobile: bool
) -> None:
    """No two boxes or labels intersect and no edge crosses a box, at both widths."""
    context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile)
    try:
        with _watched_page(context, fleet_url) as ui:
            ui.goto("/map")
            drawn = ui.page.evaluate(MEASURE)
            ui.screenshot(f"map-12-{viewport['width']}")
            assert ui.console_errors == []
    finally:
        context.close()
    names = {box["name"] for box in drawn["boxes"]}
    assert len(names) == 12
    assert len(drawn["edges"]) == len(CALLS) + len(MESSAGES)
    assert len(drawn["labels"]) == len(drawn["edges"])
    shapes = [(box["name"], box["box"]) for box in drawn["boxes"]]
    shapes += [(f"label {k}", label) for k, label in enumerate(drawn["labels"])]
    for i, (name_a, a) in enumerate(shapes):
        for name_b, b in shapes[i + 1 :]:
            assert not _intersects(a, b), f"{name_a} and {name_b} overlap at {viewport}"
    for edge in drawn["edges"]:
        ends = {edge["caller"], edge["callee"]}
        for box in drawn["boxes"]:
            if box["name"] in ends:
                continue
            crossing = [p for p in edge["points"] if _inside(p, box["box"])]
            assert not crossing, (
                f"{edge['caller']} → {edge['callee']} runs through {box['name']} at {viewport}"
            )
    # The fleet is quiet (under 1 call/s): every rate is per minute, as the legend says.
    assert "rates per minute" in drawn["legend"]
    assert len(drawn["rates"]) == 12 + len(drawn["edges"])
    assert all("/min" in rate and "/s" not in rate for rate in drawn["rates"]), drawn["rates"]
    if mobile:
        # A phone gets the top-to-bottom layout, the narrower one for this fleet.
        assert drawn["direction"] == "TB"
    else:
        # At 1400 px the whole map fits the page: nothing to scroll to.
        assert drawn["width"] <= viewport["width"]

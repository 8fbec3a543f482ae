"""What slow requests have in common, counted by a real DuckDB store: signal, not noise.

Two hundred ``GET /items`` requests; the twenty slow ones (above p90) are planted:

- sixteen of them went through ``payment.provider=slowpay`` (and four of the rest);
- they came over four keep-alive connections (``net.peer.port``), five requests each,
  while every other connection served two requests;
- their URLs repeat four item ids five times each, while every other request asked
  for an item of its own (``http.url`` carries the id);
- eight each came from users u-1 and u-2, who otherwise shop as much as anyone;
- every request carries its own timestamp (one trace per value: the store drops
  those before analysis sees them).

Only the provider is a cause; ports, URLs and timestamps are identifiers, and the
two users are a concentration. Before, ports and URLs with five slow traces and no
other were listed with an enormous lift, beside each user on their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import httpx
import pytest
from click.testing import CliRunner

from support.live_server import live_server
from support.spans import span_record
from threadline.cli import analyze
from threadline.server.aggregates import Split, Target, TimeWindow
from threadline.server.analysis.tail_latency import MIN_SUPPORT, explain
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord
from threadline.server.storage.duckdb import DuckDBStore

MS: Final = 1_000_000
BASE: Final = 1_700_000_000_000 * MS
REQUESTS: Final = 200
SLOW: Final = range(0, REQUESTS, 10)  # twenty slow requests, spread over the window
WINDOW: Final = TimeWindow(BASE - 60_000 * MS, BASE + 600_000 * MS)
TARGET: Final = Target("shop", "GET /items")


def request(index: int) -> list[SpanRecord]:
    slow = index in SLOW
    rank = SLOW.index(index) if slow else index  # position among the slow ones
    provider = "slowpay" if (slow and rank < 16) or index in (1, 2, 3, 4) else "fastpay"
    port = 50_000 + rank // 5 if slow else 40_000 + index // 2
    item = rank % 4 if slow else 1000 + index
    user = ("u-1" if rank % 2 else "u-2") if slow and rank < 16 else f"u-{3 + index % 20}"
    start = BASE + index * 1000 * MS
    trace = f"{index + 1:032x}"
    root = span_record(
        trace, f"{index:016x}", None, "shop", "GET /items", start,
        start + (900 if slow else 100 + index % 50) * MS,
        attributes={
            "net.peer.port": port,
            "http.url": f"http://shop.internal/items/{item}",
            "request.started_at": str(1_700_000_000_000 + index),
            "http.route": "/items/{id}",
            # The user as the SDK's journey stamping puts it on every span.
            "user.id": user,
        },
        user_id=user,
        resource={"service.name": "shop", "host.name": "shop-1"},
    )  # fmt: skip
    call = span_record(
        trace, f"{index:015x}1", f"{index:016x}", "shop", "charge", start + MS,
        start + 50 * MS, kind=SpanKind.CLIENT, attributes={"payment.provider": provider},
    )  # fmt: skip
    return [root, call]


SPANS: Final = [span for index in range(REQUESTS) for span in request(index)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("slow-signal") / "spans.duckdb")
    try:
        opened.write(SpanBatch.from_records(SPANS)).result()
        yield opened
    finally:
        opened.close()


def test_store_counts_rank_the_provider_alone(store: DuckDBStore) -> None:
    """The store reaches the planted values; analysis lists the provider and nothing else,
    sums the two users up, and names the identifier keys it left out."""
    groups = store.trace_groups(
        TARGET, Split.SLOW, WINDOW, percentile=90.0, min_support=MIN_SUPPORT
    )
    assert (groups.focus_traces, groups.baseline_traces) == (len(SLOW), REQUESTS - len(SLOW))
    counted = {(a.key, a.value): a for a in groups.attributes}
    # The noise really is in the counts: five slow traces per port and per URL, none else.
    assert counted[("net.peer.port", "50000")].focus_traces == 5
    assert counted[("http.url", "http://shop.internal/items/0")].baseline_traces == 0
    url = counted[("http.url", "http://shop.internal/items/0")]
    assert (url.key_values, url.key_traces) == (4 + REQUESTS - len(SLOW), REQUESTS)

    found = explain(groups, min_support=MIN_SUPPORT)
    assert [(a.key, a.value) for a in found.attributes] == [("payment.provider", "slowpay")]
    top = found.attributes[0]
    assert (top.focus_traces, top.baseline_traces) == (16, 4)
    (people,) = found.concentrations
    assert (people.key, sorted(people.values), people.focus_traces) == (
        "user.id",
        ["u-1", "u-2"],
        16,
    )
    assert {(u.key, u.reason) for u in found.unranked} >= {
        ("net.peer.port", "per connection"),
        ("http.url", "unique per request"),
    }


def test_api_and_cli_show_the_provider_first_and_the_users_summed_up(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """/api/slow answers the same lists; `threadline slow` prints the provider as the first
    row and the users as one line."""
    window = {"window": "11m", "end": str(WINDOW.end_ns // MS)}
    with live_server(tmp_path_factory.mktemp("slow-signal-api") / "spans.duckdb") as server:
        server.store.write(SpanBatch.from_records(SPANS)).result()
        response = httpx.get(
            f"{server.api_url}/slow",
            params={"service": "shop", "operation": "GET /items", **window},
            timeout=30,
        )
        command = next(c for c in analyze.COMMANDS if c.name == "slow")
        result = CliRunner().invoke(
            command,
            ["shop", "GET /items", "--server", server.url, "--window", "11m", "--end",
             window["end"]],
            env={"COLUMNS": "160"},
        )  # fmt: skip
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["slow_traces"] == len(SLOW)
    assert [(a["key"], a["value"]) for a in answer["attributes"]] == [
        ("payment.provider", "slowpay")
    ]
    assert 0 < answer["attributes"][0]["p_value"] < 1e-6
    assert answer["concentrations"][0]["key"] == "user.id"
    assert answer["concentrations"][0]["count"] == 2
    assert {"key": "net.peer.port", "reason": "per connection"} in answer["not_ranked"]
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    common = next(i for i, line in enumerate(lines) if "have in common" in line)
    assert "payment.provider=slowpay" in lines[common + 2]
    assert "net.peer.port=" not in result.output
    assert "concentrated in 2 users" in result.output

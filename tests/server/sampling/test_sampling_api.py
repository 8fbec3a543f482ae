"""GET/PUT /api/sampling on a real server: validation, ETags, persistence, TOML defaults."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.live_server import LiveServer, live_server
from threadline.sampling_rules import parse
from threadline.server.sampling.rule_store import RuleStore, default_rules_path
from threadline.server.storage.duckdb import DuckDBStore

RULES = {
    "rules": [{"name": "pay", "route": "/pay", "probability": 1.0, "max_per_second": 5}],
    "default": {"probability": 0.2, "by": "journey"},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "spans.duckdb", lifespan=True) as running:
        yield running


def test_default_rules_are_served_with_an_etag(server: LiveServer) -> None:
    """A fresh server serves "sample everything" and a tag to poll it with."""
    response = httpx.get(server.sampling_url)
    assert response.status_code == 200
    assert parse(response.json()).default.probability == 1.0
    assert response.headers["ETag"].startswith('"')


def test_an_unchanged_document_is_304_without_a_body(server: LiveServer) -> None:
    """Polling with If-None-Match costs a 304 until the rules change."""
    etag = httpx.get(server.sampling_url).headers["ETag"]
    again = httpx.get(server.sampling_url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    other = httpx.get(server.sampling_url, headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200


def test_put_replaces_the_rules_and_changes_the_etag(server: LiveServer) -> None:
    """A valid PUT is served back at once, under a new tag, to every poller."""
    before = httpx.get(server.sampling_url).headers["ETag"]
    put = httpx.put(server.sampling_url, json=RULES)
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] != before
    served = httpx.get(server.sampling_url)
    assert served.headers["ETag"] == put.headers["ETag"]
    assert parse(served.json()) == parse(RULES)
    assert httpx.get(server.sampling_url, headers={"If-None-Match": before}).status_code == 200


def test_put_rules_survive_a_restart(tmp_path: Path) -> None:
    """Rules set through the API are saved in the store and served after a restart."""
    db = tmp_path / "spans.duckdb"
    with live_server(db, lifespan=True) as first:
        etag = httpx.put(first.sampling_url, json=RULES).headers["ETag"]
    store = DuckDBStore(db)
    try:
        saved = store.document("sampling")
    finally:
        store.close()
    assert saved is not None
    assert (parse(json.loads(saved.body)), saved.etag) == (parse(RULES), etag)
    assert not (tmp_path / "spans.duckdb.sampling.json").exists()
    with live_server(db, lifespan=True) as second:
        served = httpx.get(second.sampling_url)
    assert served.headers["ETag"] == etag
    assert parse(served.json()) == parse(RULES)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"rules": [{"probability": 2}]}, "rules[0].probability"),
        ({"rules": [{"max_per_second": -1}]}, "rules[0].max_per_second"),
        ({"default": {"by": "user"}}, "default.by"),
        ({"rules": [{"rout": "/x"}]}, "rules[0].rout"),
    ],
)
def test_an_invalid_document_is_400_naming_the_field_and_changes_nothing(
    server: LiveServer, document: object, field: str
) -> None:
    """A bad PUT says which field is wrong, and the rules in force stay as they were."""
    before = httpx.get(server.sampling_url).headers["ETag"]
    response = httpx.put(server.sampling_url, json=document)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert response.json()["error"].startswith(f"{field}: ")
    assert httpx.get(server.sampling_url).headers["ETag"] == before


def test_a_body_that_is_not_json_is_400(server: LiveServer) -> None:
    """Garbage is refused with a message saying so."""
    response = httpx.put(server.sampling_url, content=b"rules = []")
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_if_match_refuses_to_overwrite_a_newer_document(server: LiveServer) -> None:
    """Two editors: the one holding a stale tag gets 412 instead of overwriting."""
    etag = httpx.get(server.sampling_url).headers["ETag"]
    first = httpx.put(server.sampling_url, json=RULES, headers={"If-Match": etag})
    assert first.status_code == 200
    second = httpx.put(server.sampling_url, json={}, headers={"If-Match": etag})
    assert second.status_code == 412
    assert parse(httpx.get(server.sampling_url).json()) == parse(RULES)


def test_editors_racing_with_one_tag_replace_the_rules_once(tmp_path: Path) -> None:
    """Editors saving at the same moment with the same ETag: exactly one of them wins."""
    spans = DuckDBStore(tmp_path / "spans.duckdb")
    store = RuleStore.open(spans, tmp_path / "rules.json")
    etag = store.get().etag
    editors = 8
    start = threading.Barrier(editors)
    results: list[object] = []

    def edit(probability: float) -> None:
        start.wait(timeout=10)
        document = {"default": {"probability": probability}}
        results.append(store.put(parse(document), if_match=etag))

    threads = [threading.Thread(target=edit, args=(i / 10,)) for i in range(editors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    saved = [result for result in results if result is not None]
    assert len(results) == editors
    assert len(saved) == 1
    assert store.get() == saved[0]
    spans.close()


def test_the_sampling_table_of_threadline_toml_is_served_until_a_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[sampling] in threadline.toml is the server's starting document."""
    config = tmp_path / "threadline.toml"
    config.write_text(
        '[sampling]\ndefault = { probability = 0.3 }\n\n[[sampling.rules]]\nroute = "/health"\n'
        "probability = 0.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("THREADLINE_CONFIG", str(config))
    with live_server(tmp_path / "spans.duckdb", lifespan=True) as server:
        served = parse(httpx.get(server.sampling_url).json())
    assert served.default.probability == 0.3
    assert served.rules[0].match.route == "/health"


def test_tail_stats_say_when_tail_sampling_is_off(server: LiveServer) -> None:
    """Without tail sampling the stats endpoint answers, with enabled false and no counts."""
    stats = httpx.get(f"{server.sampling_url}/tail/stats").json()
    assert stats == {
        "enabled": False,
        "kept": {"error": 0, "slow": 0, "rule": 0, "probability": 0},
        "dropped": 0,
        "pending": 0,
        "spans_deleted": 0,
    }


def test_the_rules_file_path_defaults_beside_the_store(tmp_path: Path) -> None:
    """The file imported is <db>.sampling.json unless sampling_rules_file names another."""
    db = tmp_path / "spans.duckdb"
    assert default_rules_path(db, "") == tmp_path / "spans.duckdb.sampling.json"
    assert default_rules_path(db, str(tmp_path / "r.json")) == tmp_path / "r.json"
    spans = DuckDBStore(db)
    try:
        store = RuleStore.open(spans, tmp_path / "absent.json")
        assert store.get().value.default.probability == 1.0
    finally:
        spans.close()

"""/api/probes on a real server: the document round trip with ETags, If-Match, a bad
document refused naming its field (and nothing lost), admin-only writes, the file
kept across restarts, ``[[probe]]`` tables of threadline.toml, and the results list."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from threadline.server.auth import MASK
from threadline.settings import ConfigError

DOCUMENT: Final[dict[str, Any]] = {
    "probes": [
        {
            "name": "checkout",
            "interval": "1m",
            "services": ["checkout", "payments"],
            "steps": [
                {
                    "name": "pay",
                    "method": "POST",
                    "url": "http://127.0.0.1:9/pay",
                    "headers": {"Content-Type": "application/json"},
                    "body": '{"card": "c-1"}',
                    "status": 201,
                    "budget": "500ms",
                }
            ],
        },
        {"name": "browse", "interval": "30s", "wait": "5s", "alert_after": 3, "url": "http://127.0.0.1:9/"},
    ]
}  # fmt: skip


def test_put_then_get_with_etags_and_if_match(tmp_path: Path) -> None:
    """The document reads back as written; If-None-Match answers 304; a stale If-Match
    answers 412 and changes nothing."""
    with live_server(tmp_path / "spans.duckdb") as server:
        api = server.api_url
        empty = httpx.get(f"{api}/probes")
        assert empty.json() == {"probes": []}
        put = httpx.put(f"{api}/probes", json=DOCUMENT, headers={"If-Match": empty.headers["ETag"]})
        assert put.status_code == 200, put.text
        got = httpx.get(f"{api}/probes")
        assert got.json() == DOCUMENT
        assert got.headers["ETag"] == put.headers["ETag"] != empty.headers["ETag"]
        again = httpx.get(f"{api}/probes", headers={"If-None-Match": got.headers["ETag"]})
        assert again.status_code == 304
        stale = httpx.put(
            f"{api}/probes", json={"probes": []}, headers={"If-Match": empty.headers["ETag"]}
        )
        assert stale.status_code == 412
        assert httpx.get(f"{api}/probes").json() == DOCUMENT


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["probes"][0]["steps"][0].update(url="ftp://x/"), "probes[0].steps[1].url"),
        (lambda d: d["probes"][0].update(interval="1"), "probes[0].interval"),
        (lambda d: d["probes"][0].update(interval="500ms"), "probes[0].interval"),
        (lambda d: d["probes"][1].update(alert_after=0), "probes[1].alert_after"),
        (lambda d: d["probes"][1].update(schedule="1m"), "probes[1].schedule"),
        (lambda d: d["probes"][1].update(name="checkout"), "probes[1].name"),
        (lambda d: d["probes"][0]["steps"][0].update(status="ok"), "probes[0].steps[1].status"),
        (lambda d: d["probes"][0]["steps"][0].update(budget="soon"), "probes[0].steps[1].budget"),
        (lambda d: d["probes"][0].update(steps=[]), "probes[0].steps"),
        (lambda d: d.update(probe=[]), "probe"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(
    tmp_path: Path, change: Any, field: str
) -> None:
    """400 with the path of the bad value; the document in force is unchanged."""
    with live_server(tmp_path / "spans.duckdb") as server:
        assert httpx.put(f"{server.api_url}/probes", json=DOCUMENT).status_code == 200
        bad = copy.deepcopy(DOCUMENT)
        change(bad)
        refused = httpx.put(f"{server.api_url}/probes", json=bad)
        assert refused.status_code == 400, refused.text
        assert refused.json()["field"] == field
        assert refused.json()["error"].startswith(f"{field}: ")
        assert httpx.get(f"{server.api_url}/probes").json() == DOCUMENT


def test_not_json_and_an_oversized_body_are_refused(tmp_path: Path) -> None:
    """Not JSON: 400 naming the body; over 1 MiB: 413; the document is unchanged."""
    with live_server(tmp_path / "spans.duckdb") as server:
        assert httpx.put(f"{server.api_url}/probes", json=DOCUMENT).is_success
        refused = httpx.put(f"{server.api_url}/probes", content=b"{probes")
        assert (refused.status_code, refused.json()["field"]) == (400, "body")
        huge = httpx.put(f"{server.api_url}/probes", content=b" " * (1024 * 1024 + 1))
        assert huge.status_code == 413
        assert "1048576 bytes" in huge.json()["error"]
        assert httpx.get(f"{server.api_url}/probes").json() == DOCUMENT


def test_only_admins_write_probes(tmp_path: Path) -> None:
    """A viewer token reads the probes (header values masked) and their results but
    cannot replace them."""
    tokens = "viewer:viewer-token-0123456789,admin:admin-token-0123456789"
    viewer = {"Authorization": "Bearer viewer-token-0123456789"}
    admin = {"Authorization": "Bearer admin-token-0123456789"}
    with live_server(tmp_path / "spans.duckdb", tokens=tokens) as server:
        refused = httpx.put(f"{server.api_url}/probes", json=DOCUMENT, headers=viewer)
        assert refused.status_code == 403
        assert httpx.put(f"{server.api_url}/probes", json=DOCUMENT, headers=admin).is_success
        masked = copy.deepcopy(DOCUMENT)
        masked["probes"][0]["steps"][0]["headers"] = {"Content-Type": MASK}
        # Header values are credentials of the probed services, often: admins only.
        assert httpx.get(f"{server.api_url}/probes", headers=viewer).json() == masked
        assert httpx.get(f"{server.api_url}/probes", headers=admin).json() == DOCUMENT
        results = httpx.get(f"{server.api_url}/probes/results", headers=viewer)
        assert [d["name"] for d in results.json()["drills"]] == ["checkout", "browse"]


def test_the_document_survives_a_restart(tmp_path: Path) -> None:
    """Saved in the store (no ``<db>.probes.json``) and served again after a restart."""
    db = tmp_path / "spans.duckdb"
    with live_server(db) as server:
        assert httpx.put(f"{server.api_url}/probes", json=DOCUMENT).is_success
    assert not (tmp_path / "spans.duckdb.probes.json").exists()
    with live_server(db) as server:
        assert httpx.get(f"{server.api_url}/probes").json() == DOCUMENT


def test_probe_tables_of_threadline_toml_are_served_until_the_first_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[[probe]]`` tables (with ``[[probe.steps]]``) are the document until a PUT."""
    config = tmp_path / "threadline.toml"
    config.write_text(
        """
[[probe]]
name = "checkout"
interval = "1m"
services = ["checkout", "payments"]

[[probe.steps]]
name = "pay"
method = "POST"
url = "http://127.0.0.1:9/pay"
status = 201
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("THREADLINE_CONFIG", str(config))
    with live_server(tmp_path / "spans.duckdb") as server:
        (probe,) = httpx.get(f"{server.api_url}/probes").json()["probes"]
        assert probe["steps"] == [
            {"name": "pay", "method": "POST", "url": "http://127.0.0.1:9/pay", "status": 201}
        ]
    config.write_text('[[probe]]\nname = "x"\ninterval = "never"\nurl = "http://a/"\n')
    with (
        pytest.raises(ConfigError, match=r"\[\[probe\]\] probe\[0\]\.interval"),
        live_server(tmp_path / "other.duckdb"),
    ):
        pass


def test_results_of_an_unknown_probe_and_a_bad_limit_are_refused(tmp_path: Path) -> None:
    with live_server(tmp_path / "spans.duckdb") as server:
        assert httpx.put(f"{server.api_url}/probes", json=DOCUMENT).is_success
        unknown = httpx.get(f"{server.api_url}/probes/results", params={"probe": "nope"})
        assert unknown.status_code == 404
        assert "nope" in unknown.json()["error"]
        bad = httpx.get(f"{server.api_url}/probes/results", params={"limit": "many"})
        assert bad.status_code == 400
        assert "limit" in bad.json()["error"]
        fresh = httpx.get(f"{server.api_url}/probes/results").json()["drills"][0]
        assert (fresh["last_run"], fresh["history"], fresh["alert"]) == (None, [], None)

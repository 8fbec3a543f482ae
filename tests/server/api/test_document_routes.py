"""The four documents people edit through the API answer alike, on a real server:
sampling rules, SLOs, funnels and probes (``api/document_routes.py``).

Each: ``GET`` with a strong ``ETag``, ``If-None-Match`` → 304 with no body, a body
over its size limit → 413, a bad document → 400 naming the bad field, a stale
``If-Match`` → 412; and none of the refused writes changes what ``GET`` serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from threadline.server.api.journey_routes import MAX_FUNNELS_BODY_BYTES
from threadline.server.api.sampling_routes import MAX_RULES_BODY_BYTES
from threadline.server.api.slo_routes import MAX_SLOS_BODY_BYTES
from threadline.server.drills.routes import MAX_PROBES_BODY_BYTES

DOCUMENTS: Final = (
    ("sampling", MAX_RULES_BODY_BYTES),
    ("slos", MAX_SLOS_BODY_BYTES),
    ("funnels", MAX_FUNNELS_BODY_BYTES),
    ("probes", MAX_PROBES_BODY_BYTES),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("documents") / "spans.duckdb") as live:
        yield live


@pytest.mark.parametrize(("name", "max_bytes"), DOCUMENTS, ids=[d[0] for d in DOCUMENTS])
def test_the_document_answers_get_and_put_like_the_others(
    server: LiveServer, name: str, max_bytes: int
) -> None:
    url = f"{server.api_url}/{name}"
    first = httpx.get(url)
    assert first.status_code == 200, first.text
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert first.json()

    unchanged = httpx.get(url, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["ETag"] == etag

    too_large = httpx.put(url, content=b" " * (max_bytes + 1))
    assert too_large.status_code == 413, too_large.text
    assert str(max_bytes) in too_large.json()["error"]

    bad = httpx.put(url, json={"<script>alert(1)</script>": 1})
    assert bad.status_code == 400, bad.text
    assert bad.json()["field"] == "<script>alert(1)</script>"
    assert bad.headers["content-type"].startswith("application/json")

    stale = httpx.put(url, json=first.json(), headers={"If-Match": '"not-the-current-one"'})
    assert stale.status_code == 412, stale.text
    assert "changed since they were read" in stale.json()["error"]

    after = httpx.get(url)
    assert (after.headers["ETag"], after.json()) == (etag, first.json())
    # The same document written back under its own tag is accepted and keeps its tag.
    same = httpx.put(url, json=first.json(), headers={"If-Match": etag})
    assert same.status_code == 200, same.text
    assert (same.headers["ETag"], same.json()) == (etag, first.json())

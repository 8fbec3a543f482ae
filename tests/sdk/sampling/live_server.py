"""A real Threadline server (``create_app`` under uvicorn) for the SDK to poll rules from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from support.live_server import live_server


class RulesServer:
    """The server's address and a way to change its rules."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sampling_url = f"{url}/api/sampling"

    def put_rules(self, document: object) -> str:
        """Replace the rules; returns their new ETag."""
        response = httpx.put(self.sampling_url, json=document, timeout=10)
        assert response.status_code == 200, response.text
        return response.headers["ETag"]


@contextmanager
def rules_server(db: Path) -> Iterator[RulesServer]:
    """Serve a Threadline server over a DuckDB file at ``db`` until the block ends."""
    with live_server(db, lifespan=True) as server:
        yield RulesServer(server.url)

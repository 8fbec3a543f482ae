"""Erasure against a real `threadline serve`: every form of the user's id is found, and
after the erasure and a stop no byte of the user's spans is left in the store's files."""

from __future__ import annotations

import base64
import hmac
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.processes import threadline_serve

USER_ID_KEY: Final = "services-user-id-key-for-erasure"
HASH_KEY: Final = "services-redaction-key-for-erasure"
EMAIL: Final = "dave.erasure@example.com"
RAW_ID: Final = "dave-raw-7731"
COMMAND_TIMEOUT_S: Final = 120.0
# Spans of other users, so the store is not empty after the erasure and its blocks mix
# the erased spans with kept ones.
OTHER_USERS: Final = 300


def keyed(prefix: str, key: str, value: str) -> str:
    """The SDK's pseudonym (u_) or redaction's hash (h_) of ``value`` under ``key``."""
    return prefix + hmac.new(key.encode(), value.encode(), "sha256").hexdigest()[:32]


def attribute(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def span(trace: int, attributes: list[dict[str, Any]], name: str) -> dict[str, Any]:
    start = time.time_ns() - 60 * 10**9
    return {
        "traceId": f"{trace:032x}",
        "spanId": f"{trace:016x}",
        "name": name,
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 1_000_000),
        "attributes": attributes,
    }


@dataclass(frozen=True, slots=True)
class Dave:
    """Dave's spans: each reached the store with the id in another form or field."""

    # trace -> (attributes, a marker only that span carries)
    spans: dict[int, tuple[list[dict[str, Any]], str]]

    @staticmethod
    def build() -> Dave:
        marker = "dave-marker-{}-q8z".format
        return Dave(
            {
                # An e-mail address as user.id: hashed at ingest under the server's key.
                1: ([attribute("user.id", EMAIL), attribute("cart.note", marker(1))], marker(1)),
                # Pseudonymised by the SDK under the services' user_id_key.
                2: (
                    [
                        attribute("user.id", keyed("u_", USER_ID_KEY, EMAIL)),
                        attribute("cart.note", marker(2)),
                    ],
                    marker(2),
                ),
                # Only enduser.id names him, pseudonymised.
                3: (
                    [
                        attribute("enduser.id", keyed("u_", USER_ID_KEY, EMAIL)),
                        attribute("cart.note", marker(3)),
                    ],
                    marker(3),
                ),
                # A plain id, raw in enduser.id.
                4: (
                    [attribute("enduser.id", RAW_ID), attribute("cart.note", marker(4))],
                    marker(4),
                ),
                # Raw in user.id.
                5: ([attribute("user.id", RAW_ID), attribute("cart.note", marker(5))], marker(5)),
            }
        )

    def documents(self) -> list[dict[str, Any]]:
        spans = [span(t, attrs, f"checkout {m}") for t, (attrs, m) in self.spans.items()]
        return [{"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}]

    def secrets(self) -> list[str]:
        """Everything of Dave's that must not survive, in every stored form."""
        markers = [marker for _, marker in self.spans.values()]
        return [
            EMAIL,
            RAW_ID,
            keyed("u_", USER_ID_KEY, EMAIL),
            keyed("h_", HASH_KEY, EMAIL),
            *markers,
        ]


def others() -> dict[str, Any]:
    spans = [
        span(
            1000 + n,
            [attribute("user.id", f"user-{n}"), attribute("cart.note", f"kept-note-{n}")],
            f"checkout kept-{n}",
        )
        for n in range(OTHER_USERS)
    ]
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


def encodings(text: str) -> list[bytes]:
    """The byte forms a value may take in a file: UTF-8, UTF-16 both ways, base64, hex."""
    raw = text.encode()
    return [
        raw,
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
        base64.b64encode(raw),
        raw.hex().encode(),
    ]


def leftovers(directory: Path, secrets: list[str]) -> dict[str, list[str]]:
    """For each file under ``directory``, the secrets found in its bytes in any encoding."""
    found: dict[str, list[str]] = {}
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = file.read_bytes()
        hits = [s for s in secrets if any(form in data for form in encodings(s))]
        if hits:
            found[file.name] = hits
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A server whose keys are the services' ones, storing into a directory it creates."""
    env = {
        **os.environ,
        "THREADLINE_USER_ID_KEY": USER_ID_KEY,
        "THREADLINE_REDACTION_HASH_KEY": HASH_KEY,
    }
    store_dir = tmp_path / "store"
    with threadline_serve(tmp_path, db=store_dir / "spans.duckdb", env=env) as server:
        yield server.url, store_dir


def erase_cli(url: str, user: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "threadline", "erase", "--user", user, "--server", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def test_erasure_finds_every_form_and_leaves_no_byte_on_disk(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    """Hashed, pseudonymised and raw ids in user.id or enduser.id all go, from every file."""
    url, store_dir = served
    dave = Dave.build()
    with httpx.Client(timeout=30) as client:
        for document in [others(), *dave.documents()]:
            assert client.post(f"{url}/v1/traces", json=document).status_code == 200
        assert client.get(f"{url}/api/stats").json()["spans"] == OTHER_USERS + len(dave.spans)
        # Reached the data: the secrets are on disk before the erasure.
        assert client.get(f"{url}/api/traces/{1:032x}").status_code == 200
        assert leftovers(store_dir, dave.secrets())

        by_email = erase_cli(url, EMAIL)
        assert by_email.returncode == 0, by_email.stderr
        hashed = keyed("h_", HASH_KEY, EMAIL)
        assert (
            f"searched redaction hash under redaction_hash_key: {hashed} (1 spans carried it)"
            in by_email.stdout
        )
        pseudonym = keyed("u_", USER_ID_KEY, EMAIL)
        assert (
            f"searched pseudonym under user_id_key: {pseudonym} (2 spans carried it)"
            in by_email.stdout
        )
        assert "erased 3 spans in all" in by_email.stdout

        by_api = client.delete(f"{url}/api/users/{RAW_ID}")
        assert by_api.status_code == 200
        answer = by_api.json()
        assert answer["erased_spans"] == 2
        assert {"form": RAW_ID, "label": "as given", "spans": 2} in answer["searched"]
        assert len(answer["searched"]) >= 4  # pseudonyms and hashes under each key

        for trace in dave.spans:
            assert client.get(f"{url}/api/traces/{trace:032x}").status_code == 404
        assert client.get(f"{url}/api/stats").json()["spans"] == OTHER_USERS
        assert client.get(f"{url}/api/traces/{1000:032x}").status_code == 200
        assert leftovers(store_dir, dave.secrets()) == {}  # while it still runs
    # ...and once stopped, in the store's files and the server's log alike.
    files = sorted(p.name for p in store_dir.iterdir())
    assert "spans.duckdb" in files
    assert leftovers(store_dir, dave.secrets()) == {}, files
    assert leftovers(tmp_path, dave.secrets()) == {}


def test_store_files_are_readable_by_their_owner_only(served: tuple[str, Path]) -> None:
    """The directory the server creates is 0700, the database and its WAL 0600."""
    url, store_dir = served
    with httpx.Client(timeout=30) as client:
        assert client.post(f"{url}/v1/traces", json=others()).status_code == 200
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    files = [p for p in store_dir.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"spans.duckdb", "spans.duckdb.wal"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}

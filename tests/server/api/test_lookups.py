"""Lookups that take what a person has at hand: a raw user id, the first characters of an id.

Real servers over real DuckDB files. User ids are stored as the SDK sends them
(pseudonymised under the services' key); trace and session ids are given by prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from support.live_server import live_server
from support.spans import span_record
from threadline.redaction.user_ids import DEFAULT_KEY, key_fingerprint, user_id_hash
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord

BASE: Final = 1_700_000_000_000_000_000
MS: Final = 1_000_000
TEAM_KEY: Final = "team-secret-key-42"

# Two traces share their first 8 characters; a third is alone under its prefix.
T_ONE: Final = "abcdef01" + "1" * 24
T_TWO: Final = "abcdef01" + "2" * 24
T_LONE: Final = "12345678" + "9" * 24
S_ONE: Final = "sess-aaaa-1111"
S_TWO: Final = "sess-aaaa-2222"


def _spans(user_key: str) -> list[SpanRecord]:
    """Alice's and Bob's traces, their user ids pseudonymised under ``user_key``."""
    pseudonym = user_id_hash(user_key)
    return [
        span_record(T_ONE, "a" * 16, None, "web", "GET /", BASE, BASE + 10 * MS,
                    session_id=S_ONE, user_id=pseudonym("alice")),
        span_record(T_TWO, "b" * 16, None, "web", "POST /cart", BASE + 50 * MS, BASE + 90 * MS,
                    session_id=S_ONE, user_id=pseudonym("alice")),
        span_record(T_LONE, "c" * 16, None, "web", "GET /", BASE + 200 * MS, BASE + 230 * MS,
                    session_id=S_TWO, user_id=pseudonym("bob")),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server configured with the services' user id key."""
    db = tmp_path_factory.mktemp("lookups") / "spans.duckdb"
    with live_server(db, user_id_key=TEAM_KEY) as live:
        live.store.write(SpanBatch.from_records(_spans(TEAM_KEY))).result()
        yield live.api_url


def answer(url: str, expected: int) -> Any:
    response = httpx.get(url)
    assert response.status_code == expected, response.text
    return response.json()


def test_raw_user_id_finds_the_journey_stored_under_its_pseudonym(api: str) -> None:
    """GET /users/alice/journey finds alice's traces though spans carry only u_…."""
    journey = answer(f"{api}/users/alice/journey", 200)
    assert [t["trace_id"] for t in journey["traces"]] == [T_ONE, T_TWO]
    assert journey["user_id"] == user_id_hash(TEAM_KEY)("alice")
    assert [t["trace_id"] for t in answer(f"{api}/users/bob/journey", 200)["traces"]] == [T_LONE]


def test_the_pseudonym_itself_still_finds_the_journey(api: str) -> None:
    """Someone who copied the stored u_… form from a span gets the same journey."""
    pseudonym = user_id_hash(TEAM_KEY)("alice")
    journey = answer(f"{api}/users/{pseudonym}/journey", 200)
    assert [t["trace_id"] for t in journey["traces"]] == [T_ONE, T_TWO]


def test_unknown_user_names_the_key_by_source_and_fingerprint(api: str) -> None:
    """A miss says ids are pseudonymised and which key was used, never the key itself."""
    message = answer(f"{api}/users/carol/journey", 404)["error"]
    assert "pseudonym" in message
    assert user_id_hash(TEAM_KEY)("carol") in message
    assert "configured user_id_key" in message
    assert key_fingerprint(TEAM_KEY) in message
    assert TEAM_KEY not in message


def test_a_server_on_the_default_key_says_so_when_the_services_use_another(
    tmp_path: Path,
) -> None:
    """Services on their own key, server on the default: the 404 tells what to configure."""
    with live_server(tmp_path / "spans.duckdb") as live:
        live.store.write(SpanBatch.from_records(_spans(TEAM_KEY))).result()
        message = answer(f"{live.api_url}/users/alice/journey", 404)["error"]
        assert "built-in default key" in message
        assert key_fingerprint("") in message
        assert DEFAULT_KEY not in message
        assert "user_id_key" in message
        # Spans pseudonymised under the default key are found with no configuration.
        # They are new spans of the same traces (later starts): a span re-sent with
        # the id and start of one stored already is dropped at write.
        later = [
            replace(s, start_ns=s.start_ns + 1000 * MS, end_ns=s.end_ns + 1000 * MS)
            for s in _spans("")
        ]
        live.store.write(SpanBatch.from_records(later)).result()
        assert answer(f"{live.api_url}/users/alice/journey", 200)["traces"]


def test_unique_trace_prefix_finds_the_trace(api: str) -> None:
    """Eight or more leading characters that name one trace work like the whole id."""
    assert answer(f"{api}/traces/12345678", 200)["summary"]["trace_id"] == T_LONE
    assert answer(f"{api}/traces/ABCDEF012", 200)["summary"]["trace_id"] == T_TWO
    path = answer(f"{api}/traces/123456789/critical-path", 200)
    assert path["trace_id"] == T_LONE


def test_ambiguous_trace_prefix_is_409_with_the_candidates(api: str) -> None:
    """A prefix of two traces answers 409 listing both, so the caller can pick."""
    body = answer(f"{api}/traces/abcdef01", 409)
    assert body["candidates"] == [T_ONE, T_TWO]
    assert body["more_candidates"] is False
    assert "give more characters" in body["error"]


def test_too_short_and_unknown_trace_prefixes(api: str) -> None:
    """Under eight characters is 400 saying so; a prefix of no trace is 404."""
    assert "at least its first 8" in answer(f"{api}/traces/abcdef0", 400)["error"]
    assert "no trace id starts with" in answer(f"{api}/traces/00000000", 404)["error"]


def test_compare_takes_prefixes(api: str) -> None:
    """/compare?a=&b= resolves each side like /traces/{id}; an ambiguous side is 409."""
    answer(f"{api}/compare?a=12345678&b=abcdef011", 200)
    assert answer(f"{api}/compare?a=12345678&b=abcdef01", 409)["candidates"] == [T_ONE, T_TWO]


def test_session_prefixes(api: str) -> None:
    """A session id by unique prefix finds its journey; ambiguous, short, unknown do not."""
    journey = answer(f"{api}/journeys/sess-aaaa-1", 200)
    assert journey["session_id"] == S_ONE
    assert [t["trace_id"] for t in journey["traces"]] == [T_ONE, T_TWO]
    assert answer(f"{api}/journeys/sess-aaaa-2/narrative", 200)
    assert answer(f"{api}/journeys/sess-aaaa", 409)["candidates"] == [S_ONE, S_TWO]
    assert "first 8" in answer(f"{api}/journeys/sess", 404)["error"]
    assert "no journey" in answer(f"{api}/journeys/sess-zzzz", 404)["error"]


def test_ui_trace_prefix_redirects_or_lists_the_candidates(api: str) -> None:
    """/trace/<prefix> goes to the one trace, or shows each candidate as a link."""
    base = api.removesuffix("/api")
    unique = httpx.get(f"{base}/trace/12345678")
    assert unique.status_code == 302
    assert unique.headers["location"] == f"/trace/{T_LONE}"
    ambiguous = httpx.get(f"{base}/trace/abcdef01")
    assert ambiguous.status_code == 409
    for candidate in (T_ONE, T_TWO):
        assert f'href="/trace/{candidate}"' in ambiguous.text
    assert httpx.get(f"{base}/trace/00000000").status_code == 404
    assert httpx.get(f"{base}/trace/abc").status_code == 400
    session = httpx.get(f"{base}/journey/sess-aaaa-2")
    assert (session.status_code, session.headers["location"]) == (302, f"/journey/{S_TWO}")
    sessions = httpx.get(f"{base}/journey/sess-aaaa")
    assert sessions.status_code == 409
    assert f'href="/journey/{S_ONE}"' in sessions.text

"""`threadline erase --user ID` against a real `threadline serve` with access tokens."""

from __future__ import annotations

import hmac
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import httpx
import pytest

from support.processes import threadline_serve
from threadline.server.model import SpanKind, SpanRecord

BASE: Final = 1_700_000_000_000_000_000
COMMAND_TIMEOUT_S: Final = 60.0
ADMIN_TOKEN: Final = "admin-token-0123456789abcdef"
VIEWER_TOKEN: Final = "viewer-token-0123456789abcdef"
USER_ID_KEY: Final = "the-services-shared-user-id-key"
T_BOB: Final = "b0" * 16


def pseudonym(user: str) -> str:
    """What the SDK stamps for ``user`` under USER_ID_KEY (threadline.sdk.pseudonym)."""
    return "u_" + hmac.new(USER_ID_KEY.encode(), user.encode(), "sha256").hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Journeys:
    """One user's traces: pseudonymous, same session without user id, and raw id."""

    user: str
    pseudonymous: str
    same_session: str
    raw: str

    @staticmethod
    def of(user: str, tag: int) -> Journeys:
        return Journeys(user, f"a{tag}" * 16, f"c{tag}" * 16, f"e{tag}" * 16)

    def spans(self) -> list[SpanRecord]:
        session = f"s-{self.user}"
        return [
            span(self.pseudonymous, 1, session=session, user=pseudonym(self.user)),
            # The downstream service had no baggage: only the trace ties it to the user.
            span(self.pseudonymous, 2, session=None, user=None),
            span(self.same_session, 1, session=session, user=None),
            span(self.raw, 1, session=f"{session}-2", user=self.user),
        ]


ALICE: Final = Journeys.of("alice", 1)
CAROL: Final = Journeys.of("carol", 2)
DAVE: Final = Journeys.of("dave", 3)


def span(trace_id: str, n: int, *, session: str | None, user: str | None) -> SpanRecord:
    return SpanRecord(
        trace_id=trace_id,
        span_id=f"{n:016x}",
        parent_span_id=None if n == 1 else f"{1:016x}",
        service_name="gateway" if n == 1 else "payments",
        name="POST /checkout" if n == 1 else "charge",
        kind=SpanKind.SERVER,
        start_ns=BASE + n,
        end_ns=BASE + n + 1000,
        session_id=session,
        user_id=user,
        attributes={k: v for k, v in (("session.id", session), ("user.id", user)) if v},
    )


def all_journeys() -> list[SpanRecord]:
    bob = [span(T_BOB, 1, session="s-bob", user="bob"), span(T_BOB, 2, session="s-bob", user="bob")]
    return [*ALICE.spans(), *CAROL.spans(), *DAVE.spans(), *bob]


@dataclass(frozen=True, slots=True)
class Server:
    url: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`threadline serve` with admin and viewer tokens over a store of four users' journeys."""
    env = {
        **os.environ,
        "THREADLINE_TOKENS": f"admin:{ADMIN_TOKEN},viewer:{VIEWER_TOKEN}",
        "THREADLINE_USER_ID_KEY": USER_ID_KEY,
    }
    directory = tmp_path_factory.mktemp("erase")
    with threadline_serve(directory, env=env, spans=all_journeys()) as served:
        yield Server(served.url)


def erase(server: Server, user: str, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(THREADLINE_TOKEN=token)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline",
            "erase",
            "--user",
            user,
            "--server",
            server.url,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def stored(server: Server, trace_id: str) -> bool:
    answer = httpx.get(
        f"{server.url}/api/traces/{trace_id}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    return answer.status_code == 200


def test_erase_removes_every_span_of_the_users_journeys(server: Server) -> None:
    """The raw id, its pseudonym and their sessions' traces go; other users' stay.

    The server knows the services' user_id_key: the operator types only the id.
    """
    result = erase(server, ALICE.user, ADMIN_TOKEN)
    assert result.returncode == 0, result.stderr
    assert (
        f"searched pseudonym under user_id_key: {pseudonym(ALICE.user)} (1 spans carried it)"
        in result.stdout
    )
    assert "searched as given: alice (1 spans carried it)" in result.stdout
    assert "searched redaction hash under the built-in redaction key: h_" in result.stdout
    assert "erased 4 spans in all" in result.stdout
    assert not any(stored(server, t) for t in (ALICE.pseudonymous, ALICE.same_session, ALICE.raw))
    assert stored(server, T_BOB)
    assert stored(server, CAROL.pseudonymous)
    again = erase(server, ALICE.user, ADMIN_TOKEN)
    assert "erased 0 spans in all" in again.stdout


def test_erase_as_given_leaves_the_pseudonym(server: Server) -> None:
    """--as-given erases only the id exactly as typed."""
    result = erase(server, CAROL.user, ADMIN_TOKEN, "--as-given")
    assert "erased 1 spans in all" in result.stdout
    assert stored(server, CAROL.pseudonymous)
    assert not stored(server, CAROL.raw)


def test_erase_needs_an_admin_token(server: Server) -> None:
    """A viewer token cannot erase; the command says why and changes nothing."""
    result = erase(server, DAVE.user, VIEWER_TOKEN)
    assert result.returncode != 0
    assert "viewer token may not DELETE" in result.stderr
    assert stored(server, DAVE.raw)
    assert stored(server, DAVE.pseudonymous)

"""Tokens from settings and files, and the refusal to serve an open server to the network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from support.processes import refused_serve
from threadline.server.auth import Role, check_exposure, is_loopback, load_tokens
from threadline.settings import ConfigError, ServerSettings

from .conftest import ADMIN_TOKEN, INGEST_TOKEN, TOKENS, VIEWER_TOKEN


def test_inline_tokens_map_to_their_roles() -> None:
    """Each `role:token` pair of the tokens setting authenticates as that role."""
    table = load_tokens(ServerSettings(tokens=TOKENS))
    found = {token: table.find(token) for token in (ADMIN_TOKEN, VIEWER_TOKEN, INGEST_TOKEN)}
    assert {t: p.role if p else None for t, p in found.items()} == {
        ADMIN_TOKEN: Role.ADMIN,
        VIEWER_TOKEN: Role.VIEWER,
        INGEST_TOKEN: Role.INGEST,
    }
    assert table.find(ADMIN_TOKEN + "x") is None
    assert table.find("") is None


def test_token_file_may_hold_only_digests(tmp_path: Path) -> None:
    """A `sha256:<hex>` line accepts the token whose digest it is; comments are ignored."""
    digest = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(
        f"# who may do what\nadmin sha256:{digest} ops-laptop\n\nviewer {VIEWER_TOKEN}\n"
    )
    table = load_tokens(ServerSettings(tokens_file=str(tokens_file)))
    admin = table.find(ADMIN_TOKEN)
    assert admin is not None
    assert (admin.name, admin.role) == ("ops-laptop", Role.ADMIN)
    assert table.find(f"sha256:{digest}") is None  # the digest itself is not a token
    assert len(table) == 2


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (ServerSettings(tokens="admin:short"), "at least 16"),
        (ServerSettings(tokens="root:0123456789abcdef0123"), "unknown role 'root'"),
        (ServerSettings(tokens="0123456789abcdef0123"), "role:token"),
        (ServerSettings(tokens=f"admin:{ADMIN_TOKEN},viewer:{ADMIN_TOKEN}"), "twice"),
        (ServerSettings(tokens_file="/nonexistent/tokens"), "tokens_file"),
    ],
)
def test_bad_tokens_are_refused_loudly(settings: ServerSettings, problem: str) -> None:
    """A malformed, weak or duplicate token stops the server with a message naming it."""
    with pytest.raises(ConfigError, match=problem):
        load_tokens(settings)


def test_bad_digest_in_token_file_is_refused(tmp_path: Path) -> None:
    """`sha256:` must be followed by a whole digest; the message names the file and line."""
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("admin sha256:abc\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_tokens(ServerSettings(tokens_file=str(tokens_file)))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.com", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    """Wildcards, LAN addresses and host names reach other machines."""
    assert is_loopback(host) is loopback


def test_open_server_on_the_network_needs_insecure() -> None:
    """No tokens on 0.0.0.0 is refused; tokens or --insecure or loopback are accepted."""
    with pytest.raises(ConfigError, match="--insecure"):
        check_exposure(ServerSettings(host="0.0.0.0"), has_tokens=False)
    check_exposure(ServerSettings(host="0.0.0.0", insecure=True), has_tokens=False)
    check_exposure(ServerSettings(host="0.0.0.0"), has_tokens=True)
    check_exposure(ServerSettings(host="127.0.0.1"), has_tokens=False)


def test_half_a_tls_configuration_is_refused() -> None:
    """A certificate without its key (or the reverse) is an error, not plain HTTP."""
    with pytest.raises(ConfigError, match="tls_cert, tls_key"):
        check_exposure(ServerSettings(tls_cert="cert.pem"), has_tokens=False)


def test_serve_refuses_to_start_open_on_all_interfaces(tmp_path: Path) -> None:
    """`threadline serve --host 0.0.0.0` without tokens exits with a message, serving nothing."""
    result = refused_serve(
        tmp_path,
        *("--host", "0.0.0.0", "--db", str(tmp_path / "spans.duckdb")),
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert not (tmp_path / "spans.duckdb").exists()

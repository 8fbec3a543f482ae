"""The ``store`` URL: every accepted form, and the password kept out of what people see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from threadline import settings
from threadline.settings import ConfigError, ServerSettings
from threadline.store_url import StoreUrl, parse, redact

SECRET: Final = "hunter2-s3cret"


def test_empty_store_is_the_duckdb_file_of_db() -> None:
    """Without ``store``, spans go to the ``db`` file, so ``--db`` keeps working."""
    assert parse("", default_db=Path("x/spans.duckdb")) == StoreUrl(
        backend="duckdb", path=Path("x/spans.duckdb")
    )
    loaded = settings.load(ServerSettings, environ={}, config_file=None)
    assert parse(loaded.store, default_db=loaded.db).path == Path("threadline.duckdb")


@pytest.mark.parametrize(
    ("text", "backend", "path"),
    [
        ("duckdb:///var/lib/t.duckdb", "duckdb", Path("/var/lib/t.duckdb")),
        ("duckdb:///./t.duckdb", "duckdb", Path("t.duckdb")),
        ("chdb:///data/threadline", "chdb", Path("/data/threadline")),
    ],
)
def test_embedded_urls_name_a_local_path(text: str, backend: str, path: Path) -> None:
    """Three slashes then the path; the URL prints back as it parses."""
    url = parse(text)
    assert (url.backend, url.path) == (backend, path)
    assert parse(url.redacted) == url


def test_clickhouse_url_gives_host_port_database_and_credentials() -> None:
    """A server URL keeps every part; the default ports are ClickHouse's HTTP(S) ports."""
    url = parse(f"clickhouse://ingest:{SECRET}@ch.internal:9000/traces")
    assert (url.host, url.port, url.database, url.username, url.password, url.secure) == (
        "ch.internal",
        9000,
        "traces",
        "ingest",
        SECRET,
        False,
    )
    assert parse("clickhouse://ch").port == 8123
    assert parse("clickhouses://ch").port == 8443
    assert parse("clickhouses://ch").secure
    assert parse("clickhouse://ch").database == "default"


def test_password_never_in_the_text_of_a_url() -> None:
    """str, repr and ``redacted`` mask the password; the user name stays."""
    url = parse(f"clickhouses://ingest:{SECRET}@ch:8443/traces")
    for shown in (str(url), repr(url), url.redacted):
        assert SECRET not in shown
    assert url.redacted == "clickhouses://ingest:***@ch:8443/traces"


@pytest.mark.parametrize(
    "text",
    [
        f"mysql://root:{SECRET}@db/x",
        f"clickhouse://root:{SECRET}@host:notaport/x",
        f"clickhouse://root:{SECRET}@/x",
        f"clickhouse://root:{SECRET}@h/a/b",
        f"clickhouse://root:{SECRET}@h/x?secure=1",
        "chdb://somehost/dir",
        "duckdb://",
    ],
)
def test_bad_url_is_an_error_naming_store_without_the_password(text: str) -> None:
    """Each malformed URL is refused with the key named and the password masked."""
    with pytest.raises(ConfigError, match=r"^store: ") as raised:
        parse(text)
    assert SECRET not in str(raised.value)


def test_redact_masks_any_url_shaped_text() -> None:
    """Text that does not parse still has its password masked."""
    assert redact(f"clickhouse://u:{SECRET}@h:x/db") == "clickhouse://u:***@h:x/db"
    assert redact("chdb:///dir") == "chdb:///dir"


def test_store_is_read_from_the_environment() -> None:
    """``THREADLINE_STORE`` sets it, like every server setting."""
    loaded = settings.load(
        ServerSettings, environ={"THREADLINE_STORE": "chdb:///tmp/x"}, config_file=None
    )
    assert parse(loaded.store).backend == "chdb"


def _clean_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "OTEL_"))}
    environ.update(extra)
    return environ


def test_doctor_shows_the_store_without_its_password(tmp_path: Path) -> None:
    """``threadline doctor`` reports THREADLINE_STORE with the password masked."""
    completed = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "doctor", "--json", "--no-send"],
        env=_clean_env(THREADLINE_STORE=f"clickhouse://ingest:{SECRET}@ch:8123/traces"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert SECRET not in completed.stdout + completed.stderr
    store = [f for f in json.loads(completed.stdout) if f["subject"] == "store"]
    assert store[0]["detail"].startswith("clickhouse://ingest:***@ch:8123/traces")


def test_serve_refuses_a_bad_store_url_without_printing_the_password(tmp_path: Path) -> None:
    """``serve --store`` with a malformed URL exits with a usage error that masks it."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.cli.main",
            "serve",
            "--store",
            f"clickhouse://ingest:{SECRET}@ch:port/traces",
        ],
        env=_clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "store:" in completed.stderr
    assert SECRET not in completed.stdout + completed.stderr


def test_a_cluster_is_named_in_the_query_string() -> None:
    """``?cluster=NAME`` is the one query a server URL takes; it prints back."""
    url = parse(f"clickhouses://ingest:{SECRET}@ch:8443/traces?cluster=prod")
    assert url.cluster == "prod"
    assert url.redacted == "clickhouses://ingest:***@ch:8443/traces?cluster=prod"
    assert parse(url.redacted.replace("***", SECRET)) == url
    for bad in ("?cluster=", "?cluster=a&cluster=b", "?cluster=a;b", "?shards=2"):
        with pytest.raises(ConfigError, match="cluster=NAME"):
            parse(f"clickhouse://ch/traces{bad}")

"""The ``store`` setting: which backend holds the spans, given as one URL.

Accepted forms::

    duckdb:///path/to/file.duckdb            embedded DuckDB file (the default backend)
    chdb:///path/to/dir                      ClickHouse's engine in this process (chDB)
    clickhouse://user:password@host:8123/db  a ClickHouse server or cluster over HTTP
    clickhouses://user:password@host:8443/db the same over HTTPS
    clickhouse://…/db?cluster=NAME           a cluster whose tables ``threadline store ddl
                                             --cluster NAME`` created (see docs/scale.md)

An empty ``store`` means ``duckdb:///<db>``, so ``--db`` keeps working.

It is shared ground (the CLI's ``doctor`` and the server both read it) and imports
neither half. A password is kept apart from the text shown to people: ``str()`` and
``redacted`` print ``***`` in its place, and every parse error quotes the redacted
form, so a password reaches only the database client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from threadline.settings import ConfigError

Backend = Literal["duckdb", "chdb", "clickhouse"]

SCHEMES: Final[dict[str, Backend]] = {
    "duckdb": "duckdb",
    "chdb": "chdb",
    "clickhouse": "clickhouse",
    "clickhouses": "clickhouse",
}
# ClickHouse's HTTP interface listens on 8123, its HTTPS interface on 8443.
DEFAULT_HTTP_PORT: Final = 8123
DEFAULT_HTTPS_PORT: Final = 8443
DEFAULT_DATABASE: Final = "default"
MASK: Final = "***"
# A cluster name as ClickHouse's remote_servers configuration names it.
_CLUSTER_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class StoreUrl:
    """A parsed ``store`` value; the password is never part of its text."""

    backend: Backend
    path: Path | None = None  # duckdb file or chdb directory
    host: str = ""
    port: int = 0
    database: str = DEFAULT_DATABASE
    username: str = ""
    password: str = field(default="", repr=False)
    secure: bool = False
    cluster: str = ""  # ClickHouse cluster name; empty: a single node

    @property
    def redacted(self) -> str:
        """The URL as people may see it: the password (if any) replaced by ``***``."""
        if self.path is not None:
            # Three slashes then the path: ``duckdb:///abs/f.duckdb``, ``duckdb:///./rel``.
            local = self.path.as_posix()
            return f"{self.backend}://{local if local.startswith('/') else '/./' + local}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        credentials = ""
        if self.username or self.password:
            credentials = self.username + (f":{MASK}" if self.password else "") + "@"
        query = f"?cluster={self.cluster}" if self.cluster else ""
        return f"{scheme}://{credentials}{self.host}:{self.port}/{self.database}{query}"

    def __str__(self) -> str:
        return self.redacted


def redact(text: str) -> str:
    """``text`` with the password of a store URL in it masked, whatever else it holds.

    For values that may not parse (shown back in an error): the part between
    ``://user:`` and ``@`` is replaced.
    """
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return text
    userinfo, _, hostport = authority.rpartition("@")
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    return f"{scheme}://{userinfo}@{hostport}{slash}{tail}"


def parse(value: str, *, default_db: Path = Path("threadline.duckdb")) -> StoreUrl:
    """The store ``value`` names; empty means the DuckDB file ``default_db``.

    Raises ``ConfigError`` naming the ``store`` key and the accepted forms (with the
    password masked) when ``value`` is not one of them.
    """
    text = value.strip()
    if not text:
        return StoreUrl(backend="duckdb", path=default_db)
    shown = redact(text)
    scheme, sep, _ = text.partition("://")
    backend = SCHEMES.get(scheme.lower()) if sep else None
    if backend is None:
        raise ConfigError(
            f"store: {shown!r} is not a store URL; use duckdb:///file.duckdb, chdb:///dir, "
            "clickhouse://user:password@host:8123/database or clickhouses://…"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"store: {shown!r} is not a valid URL ({redact(str(exc))})") from None
    if parts.fragment:
        raise ConfigError(f"store: {shown!r} takes no fragment")
    if backend in ("duckdb", "chdb"):
        if parts.query:
            raise ConfigError(f"store: {shown!r} takes no query string")
        return _embedded(backend, parts.netloc, parts.path, shown)
    cluster = _cluster(parts.query, shown)
    if not parts.hostname:
        raise ConfigError(f"store: {shown!r} names no host")
    database = unquote(parts.path.strip("/")) or DEFAULT_DATABASE
    if "/" in database:
        raise ConfigError(f"store: {shown!r}: the path must be one database name")
    secure = scheme.lower() == "clickhouses"
    return StoreUrl(
        backend="clickhouse",
        host=parts.hostname,
        port=port or (DEFAULT_HTTPS_PORT if secure else DEFAULT_HTTP_PORT),
        database=database,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        secure=secure,
        cluster=cluster,
    )


def _cluster(query: str, shown: str) -> str:
    """The ``cluster`` of a server URL's query string (its only key), or ""."""
    if not query:
        return ""
    try:
        values = parse_qs(query, strict_parsing=True)
    except ValueError:
        raise ConfigError(f"store: {shown!r}: the query string must be cluster=NAME") from None
    names = values.pop("cluster", [])
    if values or len(names) != 1 or not _CLUSTER_NAME.fullmatch(names[0]):
        raise ConfigError(
            f"store: {shown!r}: the query string takes one cluster=NAME (letters, digits, _ . -)"
        )
    return names[0]


def _embedded(backend: Backend, netloc: str, path: str, shown: str) -> StoreUrl:
    """``duckdb:///abs/path`` or ``duckdb:///rel/path``-style URLs of a local file or dir."""
    if netloc:
        raise ConfigError(
            f"store: {shown!r} names a host; a local {backend} store is {backend}:///path "
            "(three slashes)"
        )
    # ``duckdb:///data/x.duckdb`` is /data/x.duckdb; ``duckdb:///./x`` is relative.
    local = unquote(path)
    if local.startswith("/./") or local.startswith("/../"):
        local = local[1:]
    if local in ("", "/"):
        raise ConfigError(f"store: {shown!r} names no path")
    return StoreUrl(backend=backend, path=Path(local))

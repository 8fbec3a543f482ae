"""Access tokens: read from settings or a file, kept only as SHA-256 digests.

A presented token is hashed and compared with every known digest using
``hmac.compare_digest``, always all of them, so neither the comparison nor the
loop stops early and timing tells nothing about how close a guess was.

Token file format, one token a line, ``#`` starts a comment::

    admin   sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8  ops
    viewer  a-long-random-token-of-at-least-16-characters                            grafana
    ingest  sha256:...                                                              checkout

The second field is the token itself or ``sha256:`` and its hex digest (so the file
can hold no secret); the optional third names the token in logs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from threadline.server.auth.roles import Principal, Role
from threadline.settings import ConfigError, ServerSettings

# A token is the only secret between a client and every span; 16 characters of a
# random token are ~96 bits, far beyond guessing over HTTP.
MIN_TOKEN_CHARS: Final = 16
HASH_PREFIX: Final = "sha256:"
_DIGEST_HEX_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class TokenEntry:
    digest: bytes
    principal: Principal


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenTable:
    """The known tokens; ``find`` answers which principal a presented token is."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Sequence[TokenEntry]) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        """With no tokens the server is open and access control is off."""
        return bool(self._entries)

    def find(self, token: str) -> Principal | None:
        presented = digest_of(token)
        found: Principal | None = None
        for entry in self._entries:
            # No early exit: every digest is compared whatever matched.
            if hmac.compare_digest(presented, entry.digest):
                found = entry.principal
        return found


def load_tokens(settings: ServerSettings) -> TokenTable:
    """The tokens of ``tokens`` and ``tokens_file``; a malformed one is a ``ConfigError``."""
    entries = list(_inline_entries(settings.tokens))
    if settings.tokens_file:
        path = Path(settings.tokens_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"tokens_file: cannot read {path}: {exc}") from exc
        entries.extend(_file_entries(text, path))
    digests = [entry.digest for entry in entries]
    if len(set(digests)) != len(digests):
        raise ConfigError("tokens: the same token is listed twice")
    return TokenTable(entries)


def _inline_entries(text: str) -> Iterable[TokenEntry]:
    for n, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        role, sep, token = item.partition(":")
        if not sep:
            raise ConfigError(f"tokens: entry {n + 1} is not `role:token`")
        yield _entry(role.strip(), token.strip(), f"token-{n + 1}", f"tokens: entry {n + 1}")


def _file_entries(text: str, path: Path) -> Iterable[TokenEntry]:
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"tokens_file {path} line {n}"
        if len(fields) not in (2, 3):
            raise ConfigError(f"{where}: expected `role token [name]`")
        name = fields[2] if len(fields) == 3 else f"{path.name}:{n}"
        yield _entry(fields[0], fields[1], name, where)


def _entry(role_text: str, token: str, name: str, where: str) -> TokenEntry:
    try:
        role = Role(role_text.lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ConfigError(f"{where}: unknown role {role_text!r}; use one of {allowed}") from None
    if token.startswith(HASH_PREFIX):
        hex_digest = token[len(HASH_PREFIX) :].lower()
        if len(hex_digest) != _DIGEST_HEX_CHARS or not _is_hex(hex_digest):
            raise ConfigError(f"{where}: {HASH_PREFIX} must be followed by 64 hex digits")
        digest = bytes.fromhex(hex_digest)
    else:
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"{where}: the token is {len(token)} characters; use at least {MIN_TOKEN_CHARS}"
                " random ones"
            )
        digest = digest_of(token)
    return TokenEntry(digest=digest, principal=Principal(name=name, role=role))


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)

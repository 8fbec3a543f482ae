"""Pseudonymous user ids: a keyed HMAC so a user correlates across services but is not named.

``u_`` followed by the first 32 hex digits of HMAC-SHA256(key, user id): the keyed hash
of :mod:`threadline.redaction.keyed_hash` with its own prefix and key. The same id and
key give the same pseudonym in every process, so every service that shares
``THREADLINE_USER_ID_KEY`` stamps the same ``user.id`` for one user. A value already in
that form is passed through, so an id pseudonymised upstream is never hashed twice.
"""

from __future__ import annotations

from typing import Final

from threadline.redaction.keyed_hash import KeyedHash, is_hashed

PREFIX: Final = "u_"

# Used only when no key is configured, so zero configuration still hides raw ids; it is
# public (it is in this file), hence the warning that asks for a real key.
DEFAULT_KEY: Final = "threadline-default-user-id-key"
DEFAULT_KEY_WARNING: Final = (
    "user ids are pseudonymised with the built-in default key, which anyone can "
    "recompute; set THREADLINE_USER_ID_KEY (the same secret in every service)."
)


def is_pseudonym(value: str) -> bool:
    """True when ``value`` already has the pseudonym form ``u_<32 hex digits>``."""
    return is_hashed(value, PREFIX)


class Pseudonymizer:
    """Turns user ids into pseudonyms with one key; ``enabled=False`` passes ids through."""

    __slots__ = ("_enabled", "_hash")

    def __init__(self, key: str, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._hash = KeyedHash(
            key, prefix=PREFIX, default_key=DEFAULT_KEY, warning=DEFAULT_KEY_WARNING
        )

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __call__(self, user_id: str) -> str:
        return self._hash(user_id) if self._enabled else user_id

"""Pseudonymous user ids: a keyed HMAC so a user correlates across services but is not named.

``u_`` followed by the first 32 hex digits of HMAC-SHA256(key, user id): the keyed hash
of :mod:`threadline.redaction.user_ids`, which the server computes too. The same id and
key give the same pseudonym in every process, so every service that shares
``THREADLINE_USER_ID_KEY`` stamps the same ``user.id`` for one user. A value already in
that form is passed through, so an id pseudonymised upstream is never hashed twice.
"""

from __future__ import annotations

from threadline.redaction.user_ids import (
    DEFAULT_KEY,
    DEFAULT_KEY_WARNING,
    PREFIX,
    is_pseudonym,
    user_id_hash,
)

__all__ = ["DEFAULT_KEY", "DEFAULT_KEY_WARNING", "PREFIX", "Pseudonymizer", "is_pseudonym"]


class Pseudonymizer:
    """Turns user ids into pseudonyms with one key; ``enabled=False`` passes ids through."""

    __slots__ = ("_enabled", "_hash")

    def __init__(self, key: str, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._hash = user_id_hash(key)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __call__(self, user_id: str) -> str:
        return self._hash(user_id) if self._enabled else user_id

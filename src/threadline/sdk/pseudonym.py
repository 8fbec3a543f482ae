"""Pseudonymous user ids: a keyed HMAC so a user correlates across services but is not named.

``u_`` followed by the first 32 hex digits of HMAC-SHA256(key, user id). The same id
and key give the same pseudonym in every process, so every service that shares
``THREADLINE_USER_ID_KEY`` stamps the same ``user.id`` for one user. A value already in
that form is passed through, so an id pseudonymised upstream is never hashed twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from typing import Final

from threadline.sdk.guard import logger

PREFIX: Final = "u_"
# 128 bits: collisions between users are negligible and the id stays short on the wire.
DIGEST_HEX_CHARS: Final = 32
_PSEUDONYM: Final = re.compile(rf"{PREFIX}[0-9a-f]{{{DIGEST_HEX_CHARS}}}")

# Used only when no key is configured, so zero configuration still hides raw ids; it is
# public (it is in this file), hence the warning that asks for a real key.
DEFAULT_KEY: Final = "threadline-default-user-id-key"

# Distinct users seen by one process between clears; bounds the memory of the cache
# that keeps HMAC off the per-span path.
CACHE_SIZE: Final = 4096

_warn_lock = threading.Lock()
_warned_default_key = False


def is_pseudonym(value: str) -> bool:
    """True when ``value`` already has the pseudonym form ``u_<32 hex digits>``."""
    return _PSEUDONYM.fullmatch(value) is not None


class Pseudonymizer:
    """Turns user ids into pseudonyms with one key; ``enabled=False`` passes ids through."""

    __slots__ = ("_cache", "_enabled", "_key", "_uses_default_key")

    def __init__(self, key: str, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._uses_default_key = not key
        self._key = (key or DEFAULT_KEY).encode("utf-8")
        self._cache: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self._enabled

    def __call__(self, user_id: str) -> str:
        if not self._enabled:
            return user_id
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        if is_pseudonym(user_id):
            pseudonym = user_id  # cached as itself: spans of a journey see it again and again
        else:
            if self._uses_default_key:
                _warn_default_key_once()
            digest = hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
            pseudonym = PREFIX + digest[:DIGEST_HEX_CHARS]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[user_id] = pseudonym
        return pseudonym


def _warn_default_key_once() -> None:
    global _warned_default_key
    with _warn_lock:
        if _warned_default_key:
            return
        _warned_default_key = True
    logger.warning(
        "Threadline: user ids are pseudonymised with the built-in default key, which anyone "
        "can recompute; set THREADLINE_USER_ID_KEY (the same secret in every service)."
    )

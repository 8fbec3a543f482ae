"""Keyed hashes for the ``hash`` action: the same value correlates, the raw value is gone.

``h_`` followed by the first 32 hex digits of HMAC-SHA256(key, value). Without the key
the hash cannot be recomputed from guesses (a plain SHA-256 of an e-mail address can be
found by hashing candidate addresses); with the same key in every service and in the
server, one value hashes the same everywhere. A value already in that form passes
through, so a span redacted in the SDK is not hashed again at ingest.

The prefix, built-in key and warning are parameters, so another keyed pseudonym (the
SDK's ``user.id``, ``u_...``) can be the same hash under its own key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
from typing import Final

logger: Final = logging.getLogger("threadline.redaction")

PREFIX: Final = "h_"
# 128 bits: collisions are negligible and the value stays short.
DIGEST_HEX_CHARS: Final = 32
_HEX_DIGEST: Final = re.compile(rf"[0-9a-f]{{{DIGEST_HEX_CHARS}}}")

# Used only when no key is configured; it is public, hence the warning asking for one.
DEFAULT_KEY: Final = "threadline-default-redaction-key"
DEFAULT_KEY_WARNING: Final = (
    "redaction hashes values with the built-in default key, which anyone can recompute; "
    "set THREADLINE_REDACTION_HASH_KEY (the same secret everywhere)."
)

# Distinct values remembered between clears: repeated values (one user's e-mail on
# every span of a journey) skip the HMAC, and memory stays bounded.
CACHE_SIZE: Final = 4096


def is_hashed(value: str, prefix: str = PREFIX) -> bool:
    """True when ``value`` already has the form ``<prefix><32 hex digits>`` (``h_`` by default)."""
    return (
        len(value) == len(prefix) + DIGEST_HEX_CHARS
        and value.startswith(prefix)
        and _HEX_DIGEST.fullmatch(value, len(prefix)) is not None
    )


class KeyedHash:
    """HMAC-SHA256 of text under one key, cached; warns once if the built-in key is used.

    The defaults are the ``hash`` action's; another keyed pseudonym (the SDK's ``user.id``)
    passes its own ``prefix``, ``default_key`` and the ``warning`` that names its setting.
    """

    __slots__ = ("_cache", "_key", "_lock", "_prefix", "_warned", "_warning")

    def __init__(
        self,
        key: str,
        *,
        prefix: str = PREFIX,
        default_key: str = DEFAULT_KEY,
        warning: str = DEFAULT_KEY_WARNING,
    ) -> None:
        self._key = (key or default_key).encode("utf-8")
        self._prefix = prefix
        self._warning = warning
        self._warned = bool(key)
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        if is_hashed(value, self._prefix):
            return value
        if not self._warned:
            self._warn_default_key()
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        hashed = self._prefix + digest[:DIGEST_HEX_CHARS]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[value] = hashed
        return hashed

    def _warn_default_key(self) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        logger.warning("Threadline: %s", self._warning)

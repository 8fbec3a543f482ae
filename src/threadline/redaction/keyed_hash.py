"""Keyed hashes for the ``hash`` action: the same value correlates, the raw value is gone.

``h_`` followed by the first 32 hex digits of HMAC-SHA256(key, value). Without the key
the hash cannot be recomputed from guesses (a plain SHA-256 of an e-mail address can be
found by hashing candidate addresses); with the same key in every service and in the
server, one value hashes the same everywhere. A value already in that form passes
through, so a span redacted in the SDK is not hashed again at ingest.
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
_HASHED: Final = re.compile(rf"{PREFIX}[0-9a-f]{{{DIGEST_HEX_CHARS}}}")

# Used only when no key is configured; it is public, hence the warning asking for one.
DEFAULT_KEY: Final = "threadline-default-redaction-key"

# Distinct values remembered between clears: repeated values (one user's e-mail on
# every span of a journey) skip the HMAC, and memory stays bounded.
CACHE_SIZE: Final = 4096


def is_hashed(value: str) -> bool:
    """True when ``value`` already has the form ``h_<32 hex digits>``."""
    return len(value) == len(PREFIX) + DIGEST_HEX_CHARS and _HASHED.fullmatch(value) is not None


class KeyedHash:
    """HMAC-SHA256 of text under one key, cached; warns once if the built-in key is used."""

    __slots__ = ("_cache", "_key", "_lock", "_warned")

    def __init__(self, key: str) -> None:
        self._key = (key or DEFAULT_KEY).encode("utf-8")
        self._warned = bool(key)
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        if is_hashed(value):
            return value
        if not self._warned:
            self._warn_default_key()
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        hashed = PREFIX + digest[:DIGEST_HEX_CHARS]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[value] = hashed
        return hashed

    def _warn_default_key(self) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        logger.warning(
            "Threadline: redaction hashes values with the built-in default key, which anyone "
            "can recompute; set THREADLINE_REDACTION_HASH_KEY (the same secret everywhere)."
        )

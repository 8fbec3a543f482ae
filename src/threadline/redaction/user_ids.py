"""The pseudonym of a user id: ``u_`` + keyed HMAC, computed the same way by both halves.

The SDK stamps ``user.id`` in this form before a span leaves the process
(:mod:`threadline.sdk.pseudonym`); the server computes it from a raw id typed by an
operator, so ``threadline journey --user alice`` and ``threadline erase --user alice``
find what the services stored. It is :mod:`threadline.redaction.keyed_hash` with its
own prefix and built-in key.
"""

from __future__ import annotations

import hashlib
import hmac
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
# What a fingerprint is the HMAC of: a fixed text, so the fingerprint names the key
# without being a pseudonym of any user.
_FINGERPRINT_TEXT: Final = b"threadline user id key fingerprint"
FINGERPRINT_HEX_CHARS: Final = 8


def is_pseudonym(value: str) -> bool:
    """True when ``value`` already has the pseudonym form ``u_<32 hex digits>``."""
    return is_hashed(value, PREFIX)


def user_id_hash(key: str) -> KeyedHash:
    """The keyed hash that turns user ids into pseudonyms under ``key`` ("": built-in key)."""
    return KeyedHash(key, prefix=PREFIX, default_key=DEFAULT_KEY, warning=DEFAULT_KEY_WARNING)


def user_id_forms(user_id: str, hash_: KeyedHash) -> list[str]:
    """The id as given and, unless it already is one, its pseudonym under ``hash_``.

    What a lookup or an erasure by user id must try: services store the pseudonym, a
    person types the raw id (or pastes a pseudonym copied from a span).
    """
    if is_pseudonym(user_id):
        return [user_id]
    return [user_id, hash_(user_id)]


def key_fingerprint(key: str) -> str:
    """A short name of ``key`` ("": the built-in key) that does not reveal it.

    Two processes with the same fingerprint pseudonymise user ids alike; the secret
    cannot be read back from it.
    """
    secret = (key or DEFAULT_KEY).encode("utf-8")
    return hmac.new(secret, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:FINGERPRINT_HEX_CHARS]

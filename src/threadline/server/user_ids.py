"""Raw user ids typed by a person, matched to the pseudonyms the services stored.

The SDK replaces ``user.id`` by ``u_`` + keyed HMAC before a span leaves the process
(see :mod:`threadline.redaction.user_ids`). Someone looking up "alice" types the raw
id, so the server computes the same pseudonym under the key the services use (the
server's ``user_id_key``, or the built-in default both halves share) and looks up
both forms. Messages name the key by where it came from and its fingerprint, never
by its value.
"""

from __future__ import annotations

from threadline.redaction.keyed_hash import KeyedHash
from threadline.redaction.user_ids import key_fingerprint, user_id_forms, user_id_hash

CONFIGURED_SOURCE = "the configured user_id_key (THREADLINE_USER_ID_KEY or [server] user_id_key)"
DEFAULT_SOURCE = "the built-in default key"


class UserIdPseudonyms:
    """The pseudonym of a user id under one key, and how to name that key to a person."""

    __slots__ = ("_configured", "_fingerprint", "_hash")

    def __init__(self, key: str = "") -> None:
        self._configured = bool(key)
        self._fingerprint = key_fingerprint(key)
        self._hash: KeyedHash = user_id_hash(key)

    @property
    def source(self) -> str:
        return CONFIGURED_SOURCE if self._configured else DEFAULT_SOURCE

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def forms(self, user_id: str) -> list[str]:
        """The id as given and, unless it already is one, its pseudonym."""
        return user_id_forms(user_id, self._hash)

    def describe(self) -> str:
        """The key, named for a person: its source and fingerprint, never its value."""
        return f"{self.source} (fingerprint {self.fingerprint})"

    def not_found(self, user_id: str, forms: list[str]) -> str:
        """What to tell a person when no journey carries any of ``forms`` of ``user_id``."""
        key = self.describe()
        if len(forms) == 1:
            return (
                f"no journey with user_id {_shown(user_id)}, which is already a pseudonym "
                f"(raw ids typed here are pseudonymised with {key})"
            )
        return (
            f"no journey with user_id {_shown(user_id)}, nor with its pseudonym {forms[1]}. "
            "Services pseudonymise user ids before sending them (THREADLINE_USER_ID_KEY); "
            f"this server computed the pseudonym with {key}. If the services use another "
            "key, give the server the same user_id_key."
        )


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:80] + "…")

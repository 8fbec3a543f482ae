"""The forms one user's id may have in the store, for erasure to search them all.

An id reaches the store raw (``pseudonymize_user_id = false``, or an SDK that is not
Threadline's), pseudonymised by the SDK (``u_`` + keyed HMAC under ``user_id_key``),
or hashed by redaction (``h_`` + keyed HMAC: an e-mail address in ``user.id`` is
hashed at ingest under the server's ``redaction_hash_key``, and in the SDK under its
``redaction_hash_key`` or, when that is empty, its ``user_id_key``). Each keyed form is
computed under every key that may have made it, the built-in ones included (spans
stored before real keys were set). An id given already hashed is searched as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from threadline.redaction import KeyedHash, is_hashed
from threadline.redaction import keyed_hash as redaction_hash

# The SDK's pseudonym (threadline.sdk.pseudonym, which the server may not import):
# same prefix and built-in key, checked equal by the tests.
PSEUDONYM_PREFIX: Final = "u_"
PSEUDONYM_DEFAULT_KEY: Final = "threadline-default-user-id-key"


@dataclass(frozen=True, slots=True)
class IdForm:
    """One form of the id: its value and, for people, what made it."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class ErasureKeys:
    """The keys that may have turned a user's id into what the store holds."""

    user_id_key: str = ""
    redaction_hash_key: str = ""


def forms_of(user_id: str, keys: ErasureKeys) -> list[IdForm]:
    """Every form of ``user_id`` to search, the id as given first, without repeats."""
    if is_hashed(user_id, PSEUDONYM_PREFIX) or is_hashed(user_id):
        return [IdForm(user_id, "as given")]
    candidates = [IdForm(user_id, "as given")]
    pseudonym_keys = ((keys.user_id_key, "user_id_key"), ("", "the built-in user id key"))
    for key, name in pseudonym_keys:
        if key or not name.startswith("user_id_key"):
            hashed = _hash(user_id, key, PSEUDONYM_PREFIX, PSEUDONYM_DEFAULT_KEY)
            candidates.append(IdForm(hashed, f"pseudonym under {name}"))
    hash_keys = (
        (keys.redaction_hash_key, "redaction_hash_key"),
        (keys.user_id_key, "user_id_key (the SDK's redaction key when its own is unset)"),
        ("", "the built-in redaction key"),
    )
    for key, name in hash_keys:
        if key or name.startswith("the built-in"):
            hashed = _hash(user_id, key, redaction_hash.PREFIX, redaction_hash.DEFAULT_KEY)
            candidates.append(IdForm(hashed, f"redaction hash under {name}"))
    seen: set[str] = set()
    forms = []
    for form in candidates:
        if form.value not in seen:
            seen.add(form.value)
            forms.append(form)
    return forms


def _hash(value: str, key: str, prefix: str, default_key: str) -> str:
    # A real key, or the built-in one spelled out so no "default key" warning is logged.
    return KeyedHash(key or default_key, prefix=prefix)(value)

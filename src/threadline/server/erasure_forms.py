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

from threadline.redaction import KeyedHash, is_hashed
from threadline.redaction.keyed_hash import DEFAULT_KEY as HASH_DEFAULT_KEY
from threadline.redaction.keyed_hash import PREFIX as HASH_PREFIX
from threadline.redaction.user_ids import DEFAULT_KEY as PSEUDONYM_DEFAULT_KEY
from threadline.redaction.user_ids import PREFIX as PSEUDONYM_PREFIX


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
    if is_hashed(user_id, PSEUDONYM_PREFIX) or is_hashed(user_id, HASH_PREFIX):
        return [IdForm(user_id, "as given")]
    candidates = [IdForm(user_id, "as given")]
    # (key, what it is, prefix, built-in key): configured keys first, then the built-in
    # ones, which hashed whatever was stored before keys were set.
    keyed = [
        (keys.user_id_key, "pseudonym under user_id_key", PSEUDONYM_PREFIX, ""),
        ("", "pseudonym under the built-in user id key", PSEUDONYM_PREFIX, PSEUDONYM_DEFAULT_KEY),
        (keys.redaction_hash_key, "redaction hash under redaction_hash_key", HASH_PREFIX, ""),
        (
            keys.user_id_key,
            "redaction hash under user_id_key (the SDK's when its redaction_hash_key is unset)",
            HASH_PREFIX,
            "",
        ),
        ("", "redaction hash under the built-in redaction key", HASH_PREFIX, HASH_DEFAULT_KEY),
    ]
    for key, label, prefix, built_in in keyed:
        if key or built_in:
            candidates.append(IdForm(KeyedHash(key or built_in, prefix=prefix)(user_id), label))
    seen: set[str] = set()
    forms = []
    for form in candidates:
        if form.value not in seen:
            seen.add(form.value)
            forms.append(form)
    return forms

"""The forms erasure searches are exactly what the SDK and redaction store."""

from __future__ import annotations

from threadline.redaction.configured import redactor_from_settings
from threadline.sdk.pseudonym import DEFAULT_KEY, Pseudonymizer
from threadline.server.erasure_forms import PSEUDONYM_DEFAULT_KEY, ErasureKeys, forms_of
from threadline.settings import SdkSettings, ServerSettings

EMAIL = "dave@example.com"


def test_forms_match_what_the_sdk_and_ingest_store() -> None:
    """The SDK's pseudonym and ingest's hash of an e-mail in user.id are both searched."""
    keys = ErasureKeys(user_id_key="uid-key", redaction_hash_key="hash-key")
    values = {form.value for form in forms_of(EMAIL, keys)}
    ingest = redactor_from_settings(ServerSettings(redaction_hash_key="hash-key"))
    sdk = redactor_from_settings(SdkSettings(), fallback_hash_key="uid-key")
    assert ingest is not None
    assert sdk is not None
    stored_by_ingest = ingest.attributes({"user.id": EMAIL}, [])
    stored_by_sdk_redaction = sdk.attributes({"user.id": EMAIL}, [])
    assert stored_by_ingest is not None
    assert stored_by_sdk_redaction is not None
    assert {
        EMAIL,
        Pseudonymizer("uid-key")(EMAIL),
        Pseudonymizer("")(EMAIL),  # the built-in key: spans stored before keys were set
        stored_by_ingest["user.id"],
        stored_by_sdk_redaction["user.id"],
    } <= values
    assert PSEUDONYM_DEFAULT_KEY == DEFAULT_KEY


def test_an_id_given_hashed_is_searched_as_given() -> None:
    """A u_… or h_… id is not hashed again."""
    pseudonym = Pseudonymizer("k")(EMAIL)
    assert [f.value for f in forms_of(pseudonym, ErasureKeys("k"))] == [pseudonym]

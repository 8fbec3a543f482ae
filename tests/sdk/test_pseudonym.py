"""Pseudonymous user ids: keyed, stable, recognisable, never hashed twice."""

from __future__ import annotations

import hashlib
import hmac

from threadline.sdk.pseudonym import DEFAULT_KEY, Pseudonymizer, is_pseudonym


def test_format_is_prefix_and_truncated_hmac_sha256() -> None:
    """A pseudonym is `u_` plus the first 32 hex digits of HMAC-SHA256(key, id), so any tool can
    recompute it."""
    expected = hmac.new(b"secret", b"alice", hashlib.sha256).hexdigest()[:32]
    assert Pseudonymizer("secret")("alice") == f"u_{expected}"


def test_same_id_and_key_same_pseudonym_other_key_other_pseudonym() -> None:
    """Services sharing a key agree on a user's pseudonym; a different key gives an unrelated
    one."""
    assert Pseudonymizer("k")("alice") == Pseudonymizer("k")("alice")
    assert Pseudonymizer("k")("alice") != Pseudonymizer("other")("alice")
    assert Pseudonymizer("k")("alice") != Pseudonymizer("k")("bob")


def test_pseudonyms_are_not_hashed_twice() -> None:
    """An id pseudonymised upstream passes through unchanged, whatever key this service has."""
    pseudonym = Pseudonymizer("upstream-key")("alice")
    assert is_pseudonym(pseudonym)
    assert Pseudonymizer("another-key")(pseudonym) == pseudonym


def test_disabled_passes_ids_through() -> None:
    """With pseudonymising off, user ids are used as given."""
    assert Pseudonymizer("k", enabled=False)("alice") == "alice"


def test_no_key_uses_the_default_key() -> None:
    """Without a configured key ids are still pseudonymised, with the fixed default key."""
    assert Pseudonymizer("")("alice") == Pseudonymizer(DEFAULT_KEY)("alice")


def test_is_pseudonym_is_strict() -> None:
    """Only the exact form `u_` + 32 lower-case hex digits counts as already pseudonymised."""
    assert is_pseudonym("u_" + "0" * 32)
    assert not is_pseudonym("u_" + "0" * 31)
    assert not is_pseudonym("u_" + "A" * 32)
    assert not is_pseudonym("user_alice")

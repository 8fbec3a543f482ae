"""Masking of sensitive fields in API answers, as a viewer receives them."""

from __future__ import annotations

from threadline.server.auth import MASK, SensitiveFields

FIELDS = SensitiveFields.parse("user.id, client.address,enduser.*")


def test_matching_keys_and_their_api_spellings_are_masked() -> None:
    """`user.id` in attributes and `user_id` in the API's own fields are both masked."""
    answer = {
        "user_id": "alice",
        "session_id": "s-1",
        "attributes": {"user.id": "alice", "enduser.role": "admin", "http.route": "/x"},
        "resource": {"client.address": "10.0.0.1"},
    }
    assert FIELDS.mask(answer) == {
        "user_id": MASK,
        "session_id": "s-1",
        "attributes": {"user.id": MASK, "enduser.role": MASK, "http.route": "/x"},
        "resource": {"client.address": MASK},
    }


def test_key_value_pairs_mask_their_value() -> None:
    """Analysis answers list attributes as key/value pairs; the value of a sensitive key goes."""
    rows = [{"key": "user.id", "value": "alice", "lift": 3.0}, {"key": "http.route", "value": "/x"}]
    assert FIELDS.mask({"attributes": rows}) == {
        "attributes": [{"key": "user.id", "value": MASK, "lift": 3.0}, rows[1]]
    }


def test_structured_values_are_masked_whole_and_null_stays_null() -> None:
    """A list or map under a sensitive key is replaced whole; a missing user stays null."""
    answer = {"traces": [{"user_id": None, "spans": [{"attributes": {"enduser.ids": [1, 2]}}]}]}
    assert FIELDS.mask(answer) == {
        "traces": [{"user_id": None, "spans": [{"attributes": {"enduser.ids": MASK}}]}]
    }


def test_no_patterns_mask_nothing() -> None:
    """With sensitive_fields empty, answers pass unchanged."""
    answer = {"user_id": "alice"}
    assert SensitiveFields.parse("").mask(answer) is answer
    assert not SensitiveFields.parse(" , ")


def test_values_of_a_sensitive_concentration_are_masked() -> None:
    """A concentration of slow requests names its users under `values`: they are masked too."""
    row = {"key": "user.id", "noun": "users", "count": 2, "values": ["alice", "bob"]}
    other = {"key": "host.name", "values": ["api-1"]}
    assert FIELDS.mask({"concentrations": [row, other]}) == {
        "concentrations": [{**row, "values": MASK}, other]
    }

"""The rule engine: what each built-in rule removes, what it leaves, and what it records."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from threadline.redaction import (
    REDACTED_FIELDS,
    RedactionRules,
    Redactor,
    merge_redacted,
    rules_from_text,
)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
HOSTILE = {
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "sql": "'; DROP TABLE spans; -- \" OR 1=1",
    "control": "nul\x00bell\x07esc\x1b[31mred\r\nnext\ttab\x7f",
    "unicode": "Zoë 北京 \u202eevil\u202c 😀",
    "backslashes": "C:\\path\\\\to\\u0000",
}
DEFAULT = Redactor(RedactionRules(), "test-key")


def redacted(
    attributes: Mapping[str, object], redactor: Redactor = DEFAULT
) -> tuple[dict[str, object], list[str]]:
    found: list[str] = []
    copy = redactor.attributes(attributes, found)
    return (dict(attributes) if copy is None else copy), found


@pytest.mark.parametrize(
    "key",
    [
        "db.password",
        "app.client_secret",
        "auth.token",
        "refresh_token",
        "http.request.header.authorization",
        "http.request.header.cookie",
        "http.response.header.set-cookie",
        "Service.API_KEY",
    ],
)
def test_credential_keys_are_masked_by_default(key: str) -> None:
    """Values under password/secret/token/cookie/authorization keys never leave as they were."""
    attributes, found = redacted({key: "s3cr3t-value", "http.route": "/login"})
    assert attributes == {key: "[REDACTED]", "http.route": "/login"}
    assert found == [key]


def test_token_counts_are_not_credentials() -> None:
    """Numbers under a matching key (LLM token counts) are kept: only text can be a secret."""
    attributes = {"gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 40}
    assert redacted(attributes) == (attributes, [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mail bob.smith+shop@example.co.uk now", "mail [REDACTED:email] now"),
        ("card 4111 1111 1111 1111 declined", "card ****1111 declined"),
        ("card 4111-1111-1111-1111", "card ****1111"),
        ("pan=5555555555554444;", "pan=****4444;"),
        (f"token {JWT} expired", "token [REDACTED:jwt] expired"),
        ("Authorization: Bearer abc123.def456-ghi", "Authorization: Bearer [REDACTED]"),
        ("basic dXNlcjpwYXNzd29yZA==", "basic [REDACTED]"),
    ],
)
def test_detectors_mask_what_they_find_and_keep_the_rest(value: str, expected: str) -> None:
    """E-mail addresses, card numbers, JWTs and bearer credentials inside text are masked."""
    attributes, found = redacted({"message": value})
    assert attributes == {"message": expected}
    assert found == ["message"]


@pytest.mark.parametrize(
    "value",
    [
        "order 4111111111111112 shipped",  # fails Luhn
        "trace 1763717671000000000 at 1763717671000",  # timestamps
        "id 9000000000000001",  # Luhn-valid, no issuer
        "4bf92f3577b34da6a3ce929d0e0e4736",  # a trace id
        "bearer authentication is required",  # prose, not a credential
        "user@localhost",  # no domain
        "eyJ alone is not a token",
        "GET /api/orders/{id}",
        "python-requests/2.32.3 CPython/3.11.9",
        "10.0.0.1 and fe80::1",  # addresses: the ip detector is off by default
        "port 8080 took 1500000000000 ns",  # ports and durations
        "ratio 0.4111111111111111",  # a decimal fraction, not a card
        "@here ships pkg@1.2.3",  # at-signs that are not addresses
        "status code=500 max_tokens=100 bypass=true",  # not secret names
        "https://shop.example:8443/search?q=shoes&page=2",  # a port is not a password
        "the token expired; basic plan",  # prose around scheme names
    ],
)
def test_lookalikes_are_left_alone(value: str) -> None:
    """Order ids, timestamps, trace ids, prose and (by default) IP addresses are not redacted."""
    assert redacted({"message": value}) == ({"message": value}, [])


def test_hostile_values_pass_through_unchanged() -> None:
    """Markup, SQL and control characters are data: no rule matches them, none is altered."""
    assert DEFAULT.attributes(HOSTILE, []) is None


def test_hostile_values_are_redacted_only_where_a_rule_matches() -> None:
    """A hostile value holding an address loses the address and keeps every other byte."""
    value = HOSTILE["control"] + "<a href='mailto:eve@example.org'>" + HOSTILE["sql"]
    attributes, _ = redacted({"message": value})
    expected = HOSTILE["control"] + "<a href='mailto:[REDACTED:email]'>" + HOSTILE["sql"]
    assert attributes == {"message": expected}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "url.full",
            "https://shop.example/cb?code=Xy1&state=ok&access_token=t0k#id_token=abc",
            "https://shop.example/cb?code=REDACTED&state=ok&access_token=REDACTED"
            "#id_token=REDACTED",
        ),
        (
            "http.url",
            "https://alice:hunter2@shop.example/orders?page=2",
            "https://REDACTED:REDACTED@shop.example/orders?page=2",
        ),
        (
            "http.target",
            "/signup?email=bob%40example.com&plan=pro",
            "/signup?email=REDACTED&plan=pro",
        ),
        (
            "url.query",
            "X-Amz-Signature=ab12&X-Amz-Expires=300&password=pw",
            "X-Amz-Signature=REDACTED&X-Amz-Expires=300&password=REDACTED",
        ),
    ],
)
def test_query_strings_keep_names_and_lose_sensitive_values(
    key: str, value: str, expected: str
) -> None:
    """URL attributes keep every parameter name; sensitive values and user:password go."""
    assert redacted({key: value}) == ({key: expected}, [key])


def test_urls_without_sensitive_parts_are_kept() -> None:
    """A URL with only harmless parameters is stored exactly as sent."""
    url = "https://shop.example/search?q=shoes&page=2&sort=price#top"
    assert redacted({"url.full": url}) == ({"url.full": url}, [])


def test_journey_keys_are_hashed_so_the_journey_still_groups() -> None:
    """A user.id that is an e-mail address becomes one stable hash, not a shared mask."""
    first, found = redacted({"user.id": "bob@example.com"})
    second, _ = redacted({"user.id": "bob@example.com"})
    other, _ = redacted({"user.id": "eve@example.com"})
    assert str(first["user.id"]).startswith("h_")
    assert first == second
    assert first != other
    assert found == ["user.id"]


def test_keyed_hash_is_stable_per_key_and_differs_between_keys() -> None:
    """The hash action gives equal outputs for equal inputs under one key, others under another."""
    rules = rules_from_text("customer.email=hash")
    one = Redactor(rules, "key-one")
    same = Redactor(rules, "key-one")
    two = Redactor(rules, "key-two")
    attributes = {"customer.email": "Bob@Example.com"}
    hashed_one, _ = redacted(attributes, one)
    assert hashed_one == redacted(attributes, same)[0]
    assert hashed_one != redacted(attributes, two)[0]
    assert "Bob" not in str(hashed_one)
    assert "example" not in str(hashed_one)


def test_actions_from_settings_text() -> None:
    """Key rules from settings drop, hash or keep, and win over the built-in rules."""
    rules = rules_from_text("debug.*=drop, customer.id=hash, gen_ai.prompt_token=keep, x-*")
    redactor = Redactor(rules, "k")
    attributes, found = redacted(
        {
            "debug.payload": "{...}",
            "customer.id": 4211,
            "gen_ai.prompt_token": "kept as is",
            "x-internal": "masked",
            "http.route": "/",
        },
        redactor,
    )
    assert attributes["customer.id"] == redacted({"customer.id": 4211}, redactor)[0]["customer.id"]
    assert str(attributes["customer.id"]).startswith("h_")
    assert "debug.payload" not in attributes
    assert attributes["gen_ai.prompt_token"] == "kept as is"
    assert attributes["x-internal"] == "[REDACTED]"
    assert attributes["http.route"] == "/"
    assert sorted(found) == ["customer.id", "debug.payload", "x-internal"]


def test_detector_actions_and_the_optional_ip_detector() -> None:
    """Detectors can hash or drop instead of masking; ip finds IPv4 and IPv6 addresses."""
    redactor = Redactor(rules_from_text(detectors="email=hash,card=drop,ip"), "k")
    attributes, found = redacted(
        {
            "from": "alice@example.com",
            "pan": "4111111111111111",
            "peer": "from 10.1.2.3 via 2001:db8::7 at 12:30:45",
        },
        redactor,
    )
    assert str(attributes["from"]).startswith("h_")
    assert "pan" not in attributes
    assert attributes["peer"] == "from [REDACTED:ip] via [REDACTED:ip] at 12:30:45"
    assert sorted(found) == ["from", "pan", "peer"]


def test_sequences_and_card_numbers_stored_as_numbers() -> None:
    """Items of array values are scanned, and an integer that is a card number is masked."""
    attributes, found = redacted({"to": ["a@example.com", "ops"], "pan": 4111111111111111})
    assert attributes == {"to": ["[REDACTED:email]", "ops"], "pan": "****1111"}
    assert sorted(found) == ["pan", "to"]


def test_redacting_twice_changes_nothing_more() -> None:
    """Masks and hashes are not matched again: a span redacted by the SDK passes ingest as is."""
    attributes = {
        "auth.token": "abc",
        "user.id": "bob@example.com",
        "message": "to bob@example.com, card 4111111111111111",
        "url.full": "https://u:p@x.example/?token=1",
    }
    once, _ = redacted(attributes)
    assert DEFAULT.attributes(once, []) is None


def test_text_fields_are_scanned_by_detectors() -> None:
    """Span names and status messages lose what detectors find; clean ones are untouched."""
    assert DEFAULT.text("charge failed for bob@example.com") == "charge failed for [REDACTED:email]"
    assert DEFAULT.text("GET /api/orders/{id}") is None
    dropping = Redactor(rules_from_text(detectors="email=drop"), "k")
    assert dropping.text("mail bob@example.com") == "[REDACTED]"


def test_recorded_fields_name_keys_never_values() -> None:
    """The redacted-fields list merges with one already on the span and holds only key names."""
    _, found = redacted({"db.password": "hunter2", "note": "bob@example.com"})
    merged = merge_redacted(["events.exception.exception.message"], found)
    assert merged == ("db.password", "events.exception.exception.message", "note")
    assert not any("hunter2" in name or "bob" in name for name in merged)
    assert DEFAULT.attributes({REDACTED_FIELDS: ["user.password"]}, []) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("GET /reset?token=t0k&lang=en", "GET /reset?token=REDACTED&lang=en"),
        (
            "dsn postgresql://app:p@ss@db:5432/shop",
            "dsn postgresql://REDACTED:REDACTED@db:5432/shop",
        ),
        ("redis://:pw-1@cache:6379", "redis://REDACTED:REDACTED@cache:6379"),
        ("Server=db;User Id=sa;Password=pw-2;", "Server=db;User Id=sa;Password=REDACTED;"),
        ('{"client_secret": "pw-3"}', '{"client_secret": "REDACTED"}'),
        (
            'Authorization: Digest username="bob", response="6629fae4"',
            "Authorization: Digest [REDACTED]",
        ),
        ("AUTHORIZATION: BEARER abc.def-123", "AUTHORIZATION: BEARER [REDACTED]"),
        ("card 4111 1111 1111 1111 12/25", "card ****1111 12/25"),
        ("mail jörg@bücher.de or bob%40example.com", "mail [REDACTED:email] or [REDACTED:email]"),
    ],
)
def test_credentials_schemes_and_spellings_in_text(value: str, expected: str) -> None:
    """Passwords in URLs, connection strings and name=value text, every Authorization
    scheme, grouped cards and addresses in every spelling are masked inside text."""
    assert DEFAULT.text(value) == expected
    assert DEFAULT.text(expected) is None  # and a second pass finds nothing more


def test_keys_holding_personal_data_are_renamed_and_listed_redacted() -> None:
    """A key with an address in it is stored and listed only in its redacted form."""
    attributes, found = redacted({"vip:ann@example.com": "yes", "4111111111111111": 1})
    assert attributes == {"vip:[REDACTED:email]": "yes", "****1111": 1}
    assert sorted(found) == ["****1111", "vip:[REDACTED:email]"]


def test_a_received_redacted_list_is_scanned_not_trusted() -> None:
    """threadline.redacted arriving with a span exempts nothing and keeps no value."""
    attributes, found = redacted(
        {REDACTED_FIELDS: ["note", "eve@example.com"], "note": "for eve@example.com"}
    )
    assert attributes == {
        REDACTED_FIELDS: ["note", "[REDACTED:email]"],
        "note": "for [REDACTED:email]",
    }
    assert sorted(found) == ["note", REDACTED_FIELDS]


def test_card_numbers_as_floats_and_bytes() -> None:
    """A card number stored as a float or as bytes is masked like one written as text."""
    attributes, found = redacted(
        {"a": 4111111111111111.0, "b": b"5555555555554444", "c": b"\xff\x00", "d": 12.5}
    )
    assert attributes == {"a": "****1111", "b": "****4444", "c": b"\xff\x00", "d": 12.5}
    assert sorted(found) == ["a", "b"]


def test_values_at_a_cut_length_lose_their_trailing_fragment() -> None:
    """Given the length values were cut to, a value of that length loses its last word
    or digit groups, which could be half an address or card number."""
    cut = Redactor(RedactionRules(), "k", cut_lengths=(20,))
    attributes, _ = redacted(
        {"a": "mail to zelda.quux@e", "b": "card: 4111 1111 1111", "c": "ok"}, cut
    )
    assert attributes == {"a": "mail to [REDACTED:cut]", "b": "card: [REDACTED:cut]", "c": "ok"}

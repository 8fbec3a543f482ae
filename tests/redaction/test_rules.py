"""Rules from settings: defaults on with no configuration, typos refused naming the setting."""

from __future__ import annotations

import pytest

from threadline.redaction import (
    Action,
    DetectorRule,
    KeyRule,
    RuleError,
    parse_detectors,
    parse_key_rules,
)
from threadline.redaction.configured import redactor_from_settings
from threadline.settings import ConfigError, SdkSettings, ServerSettings, load


@pytest.mark.parametrize("cls", [SdkSettings, ServerSettings])
def test_redaction_is_on_without_any_configuration(cls: type[SdkSettings | ServerSettings]) -> None:
    """With no settings at all both halves redact with the built-in rules and detectors."""
    redactor = redactor_from_settings(load(cls, environ={}))
    assert redactor is not None
    found: list[str] = []
    copy = redactor.attributes({"db.password": "pw", "note": "to bob@example.com"}, found)
    assert copy == {"db.password": "[REDACTED]", "note": "to [REDACTED:email]"}


def test_redaction_can_be_turned_off() -> None:
    """THREADLINE_REDACTION=false gives no redactor: spans are exported as recorded."""
    assert (
        redactor_from_settings(load(SdkSettings, environ={"THREADLINE_REDACTION": "false"})) is None
    )


def test_rule_text_is_parsed_in_order() -> None:
    """Items are globs or detector names with an optional action; mask is the default."""
    assert parse_key_rules(" Customer.Email=HASH, debug.*=drop ,x-*") == (
        KeyRule("customer.email", Action.HASH),
        KeyRule("debug.*", Action.DROP),
        KeyRule("x-*", Action.MASK),
    )
    assert parse_detectors("email=hash,ip") == (
        DetectorRule("email", Action.HASH),
        DetectorRule("ip", Action.MASK),
    )
    assert parse_detectors("") == ()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"THREADLINE_REDACTION_KEYS": "customer.email=scramble"}, "THREADLINE_REDACTION_KEYS"),
        ({"THREADLINE_REDACTION_KEYS": "=hash"}, "THREADLINE_REDACTION_KEYS"),
        ({"THREADLINE_REDACTION_DETECTORS": "email,phone"}, "THREADLINE_REDACTION_DETECTORS"),
        ({"THREADLINE_REDACTION_DETECTORS": "email=keep"}, "THREADLINE_REDACTION_DETECTORS"),
    ],
)
def test_a_rule_that_does_not_parse_is_an_error_naming_the_setting(
    environ: dict[str, str], named: str
) -> None:
    """A typo in a rule is refused with the setting's name, never silently ignored."""
    with pytest.raises(ConfigError, match=named):
        redactor_from_settings(load(ServerSettings, environ=environ))


def test_rule_errors_say_what_is_allowed() -> None:
    """The message lists the known actions and detectors."""
    with pytest.raises(RuleError, match="mask, hash, drop, keep"):
        parse_key_rules("a=b")
    with pytest.raises(RuleError, match="credentials, email, card, jwt, bearer, ip"):
        parse_detectors("ssn")


def test_long_runs_of_address_characters_are_scanned_whole() -> None:
    """A huge value of e-mail-like characters is scanned to the end and its address found."""
    redactor = redactor_from_settings(load(ServerSettings, environ={}))
    assert redactor is not None
    value = "a." * 100_000 + " bob@example.com " + "1-" * 100_000
    scrubbed = redactor.text(value)
    assert scrubbed == "a." * 100_000 + " [REDACTED:email] " + "1-" * 100_000

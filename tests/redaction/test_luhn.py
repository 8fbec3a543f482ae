"""Card numbers: Luhn plus issuer prefixes, so order ids and timestamps are not taken for cards."""

from __future__ import annotations

import pytest

from threadline.redaction import is_card_number, luhn_valid

# Test numbers the card networks publish for sandboxes.
CARDS = (
    "4111111111111111",  # Visa
    "4012888888881881",  # Visa
    "5555555555554444",  # Mastercard
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # American Express
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "30569309025904",  # Diners Club
    "6200000000000005",  # UnionPay
)


@pytest.mark.parametrize("number", CARDS)
def test_published_test_cards_are_card_numbers(number: str) -> None:
    """Every network's published test number is recognised."""
    assert luhn_valid(number)
    assert is_card_number(number)


def test_one_wrong_digit_fails_the_checksum() -> None:
    """A mistyped digit breaks Luhn, so the run is not taken for a card."""
    assert not luhn_valid("4111111111111112")
    assert not is_card_number("4111111111111112")


@pytest.mark.parametrize(
    "digits",
    [
        "1763717671000",  # epoch milliseconds
        "1763717671000000000",  # epoch nanoseconds
        "1000000000000008",  # passes Luhn, but no issuer starts with 1
        "9000000000000001",  # passes Luhn, but no issuer starts with 9
        "20261121093431",  # a compact date-time
        "41111111111111",  # a Visa prefix at a length Visa does not issue
        "4111111111111111111111",  # too long for any card
        "411111111111",  # too short for any card
    ],
)
def test_digit_runs_that_are_not_cards(digits: str) -> None:
    """Timestamps, ids and runs of the wrong length or prefix are not card numbers."""
    assert not is_card_number(digits)


def test_non_ascii_digits_are_not_card_numbers() -> None:
    """Only ASCII digits count: other scripts' digits are not read as a card number."""
    assert not is_card_number("٤١١١١١١١١١١١١١١١")

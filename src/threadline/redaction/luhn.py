"""Payment card numbers: the Luhn checksum plus the issuer prefixes and lengths cards use.

Luhn alone accepts one digit run in ten, so an order id or a timestamp of the right
length would often pass it. A run is taken for a card number only when it also starts
with a prefix an issuer uses (ISO/IEC 7812 issuer identification numbers) and has a
length that issuer issues. Epoch timestamps (seconds to nanoseconds) start with 1,
which no issuer below uses, so they are never taken for cards.
"""

from __future__ import annotations

from typing import Final

# (first prefix, last prefix, lengths): a number whose leading digits, read as a number
# of len(str(first prefix)) digits, fall in [first, last] and whose length is listed.
_ISSUERS: Final[tuple[tuple[int, int, frozenset[int]], ...]] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),  # American Express
    (6011, 6011, frozenset(range(16, 20))),  # Discover
    (644, 649, frozenset(range(16, 20))),  # Discover
    (65, 65, frozenset(range(16, 20))),  # Discover
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (36, 36, frozenset(range(14, 20))),  # Diners Club
    (38, 39, frozenset(range(16, 20))),  # Diners Club
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (50, 50, frozenset(range(13, 20))),  # Maestro
    (56, 58, frozenset(range(13, 20))),  # Maestro
    (6304, 6304, frozenset(range(13, 20))),  # Maestro
    (67, 67, frozenset(range(13, 20))),  # Maestro
)

MIN_DIGITS: Final = 13
MAX_DIGITS: Final = 19


def luhn_valid(digits: str) -> bool:
    """True when the decimal string ``digits`` passes the Luhn (mod 10) checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def has_issuer_prefix(digits: str) -> bool:
    """True when ``digits`` starts like, and is as long as, a number some issuer uses."""
    length = len(digits)
    for first, last, lengths in _ISSUERS:
        if length in lengths and first <= int(digits[: len(str(first))]) <= last:
            return True
    return False


def is_card_number(digits: str) -> bool:
    """True when ``digits`` (decimal digits only) looks like a payment card number."""
    return (
        MIN_DIGITS <= len(digits) <= MAX_DIGITS
        and digits.isascii()
        and digits.isdigit()
        and has_issuer_prefix(digits)
        and luhn_valid(digits)
    )

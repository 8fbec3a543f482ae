"""Detectors: patterns that find personal data and credentials inside attribute values.

Each detector is a compiled regular expression, an optional check that rejects
lookalikes (Luhn for cards, address parsing for IPs), the mask that replaces a match,
and *hints*: substrings a value must contain before the expression is run at all.
Most values (methods, routes, status words) contain no hint, so the common case costs
a few substring tests rather than a regex scan.

Every expression is safe on hostile input: each starts behind a look-behind that
refuses to start inside a run of the characters it consumes, and every repetition is
bounded, so a scan is linear in the length of the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from threadline.redaction.luhn import is_card_number

MASK: Final = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of sensitive value and how a found one is masked."""

    name: str
    pattern: re.Pattern[str]
    # The value is scanned only if it contains one of these; empty: always scanned.
    hints: tuple[str, ...]
    mask: Callable[[re.Match[str]], str]
    # Rejects matches that only look like the real thing (None: every match counts).
    accept: Callable[[str], bool] | None = None
    # Shortest text the pattern can match.
    min_length: int = 1

    def may_occur_in(self, text: str) -> bool:
        """Cheap pre-check: False means the pattern cannot match ``text``."""
        if len(text) < self.min_length:
            return False
        if not self.hints:
            return True
        # A plain loop: any() over a generator costs more than the tests themselves.
        for hint in self.hints:  # noqa: SIM110
            if hint in text:
                return True
        return False


def _fixed(mask: str) -> Callable[[re.Match[str]], str]:
    def replace(_: re.Match[str]) -> str:
        return mask

    return replace


# RFC 5321 limits: local part 64 characters, labels 63; the bounds also keep the scan
# linear on a long run of address characters.
EMAIL: Final = Detector(
    name="email",
    pattern=re.compile(
        # (?!REDACTED@): the authority of a URL whose user:password was already masked.
        r"(?<![A-Za-z0-9._%+-])(?!REDACTED@)[A-Za-z0-9._%+-]{1,64}@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}"
        r"(?![A-Za-z0-9-])"
    ),
    hints=("@",),
    mask=_fixed("[REDACTED:email]"),
    min_length=6,
)


def _card_digits(found: str) -> str:
    return found.replace(" ", "").replace("-", "")


def _mask_card(match: re.Match[str]) -> str:
    return "****" + _card_digits(match.group(0))[-4:]


# 13 to 19 digits, optionally grouped by single spaces or dashes ("4111 1111 1111 1111").
# It starts with the digit class and checks the character before it afterwards, so the
# regex engine can skip ahead to the next digit instead of trying every position.
CARD: Final = Detector(
    name="card",
    pattern=re.compile(r"[0-9](?<![0-9A-Za-z].)(?:[ -]?[0-9]){12,18}(?![0-9A-Za-z])"),
    hints=(),
    mask=_mask_card,
    accept=lambda found: is_card_number(_card_digits(found)),
    min_length=13,
)

# Header and payload are base64url JSON objects, so both start "ey" ('{"' encoded);
# the signature may be empty (alg "none").
JWT: Final = Detector(
    name="jwt",
    pattern=re.compile(
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.ey[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
    ),
    hints=("eyJ",),
    mask=_fixed("[REDACTED:jwt]"),
    min_length=17,
)

# "Bearer <token>" / "Basic <credentials>" as in an Authorization header. The credential
# must hold a digit or a punctuation character tokens use, so prose such as "bearer
# authentication" is not taken for one.
BEARER: Final = Detector(
    name="bearer",
    pattern=re.compile(
        r"(?<![A-Za-z])(Bearer|bearer|BEARER|Basic|basic|BASIC)[ \t]{1,8}"
        r"(?=[A-Za-z0-9._~+/=-]{0,512}[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"
    ),
    hints=("earer", "EARER", "asic", "ASIC"),
    mask=lambda match: f"{match.group(1)} {MASK}",
    min_length=13,
)


def _is_ip_address(found: str) -> bool:
    try:
        ipaddress.ip_address(found)
    except ValueError:
        return False
    return True


# Dotted quads, and runs of hex groups and colons (with an optional IPv4 tail); the
# address parser then rejects clock times ("12:30:45"), versions and the like.
IP: Final = Detector(
    name="ip",
    pattern=re.compile(
        r"(?<![0-9A-Za-z.:])(?:"
        r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}"
        r"|[0-9A-Fa-f:]{2,39}(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"
        r")(?![0-9A-Za-z:]|\.[0-9])"
    ),
    hints=(".", ":"),
    mask=_fixed("[REDACTED:ip]"),
    accept=_is_ip_address,
    min_length=2,
)

BY_NAME: Final[dict[str, Detector]] = {d.name: d for d in (EMAIL, CARD, JWT, BEARER, IP)}

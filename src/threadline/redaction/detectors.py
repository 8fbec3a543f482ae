"""Detectors: patterns that find personal data and credentials inside text.

Each detector is a compiled regular expression, an optional ``locate`` that rejects
lookalikes or narrows a match to the finding inside it (Luhn for cards, address parsing
for IPs), the mask that replaces a finding, and *hints*: substrings a text must
contain before the expression is run at all. Detectors whose words come in any case
("Bearer", "PASSWORD") have a *prefilter* instead: a few substring tests and a
pattern of plain words searched in the lower-cased text, which the regex engine skips
through far faster than a case-insensitive expression (``bench/redaction.py``
measures the cost per span). Most values (methods, routes, URLs, status
words) contain no hint, so the common case costs a few substring tests rather than a
regex scan.

Every expression is safe on hostile input: each starts behind a look-behind that
refuses to start inside a run of the characters it consumes, and every repetition is
bounded, so a scan is linear in the length of the value.

The engine runs the enabled detectors in :data:`ORDER`, whatever order the settings
name them in: credentials first (``user:pass@host`` must not look like an e-mail
address), JWTs before ``Authorization`` schemes (``token eyJ…`` keeps saying it was a
JWT), cards last.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from threadline.redaction.luhn import MAX_DIGITS, is_card_number

MASK: Final = "[REDACTED]"
# The mask of a URL part or a ``name=value`` secret, as the semantic conventions spell it.
REDACTED_WORD: Final = "REDACTED"

Locate = Callable[[str], "tuple[int, int] | None"]


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of sensitive value and how a found one is masked."""

    name: str
    pattern: re.Pattern[str]
    # The text is scanned only if it contains one of these; without hints, only if
    # ``prefilter`` says it may hold a finding; with neither: always.
    hints: tuple[str, ...]
    # The found text -> its replacement.
    mask: Callable[[str], str]
    # Where in a match the finding is, as (start, end) within it; None: the match only
    # looks like the real thing. Without ``locate`` every whole match counts.
    locate: Locate | None = None
    # Shortest text the pattern can match.
    min_length: int = 1
    # For words that may come in any case ("Bearer", "BEARER", "bearer").
    prefilter: Callable[[str], bool] | None = None
    # Finds the (start, end) of each finding itself, instead of ``pattern``.
    finder: Callable[[str], list[tuple[int, int]]] | None = None

    def find(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of each finding in ``text``, left to right."""
        if self.finder is not None:
            yield from self.finder(text)
            return
        locate = self.locate
        for match in self.pattern.finditer(text):
            start, end = match.span()
            if locate is None:
                yield start, end
                continue
            where = locate(match.group(0))
            if where is not None:
                yield start + where[0], start + where[1]

    def may_occur_in(self, text: str) -> bool:
        """Cheap pre-check: False means the pattern cannot match ``text``."""
        if len(text) < self.min_length:
            return False
        if self.hints:
            # A plain loop: any() over a generator costs more than the tests themselves.
            for hint in self.hints:  # noqa: SIM110
                if hint in text:
                    return True
            return False
        return self.prefilter is None or self.prefilter(text)


def _fixed(mask: str) -> Callable[[str], str]:
    def replace(_: str) -> str:
        return mask

    return replace


# -- e-mail ----------------------------------------------------------------------------

# RFC 5321 limits (local part 64 characters, labels 63) keep the scan linear on a long
# run of address characters. \w is Unicode: internationalised addresses (RFC 6531,
# "jörg@bücher.de", "用户@例子.广告") are found too, and so are addresses written
# percent-encoded outside URLs ("bob%40example.com"). The top-level domain must be
# letters (or punycode), so "pkg@1.2.3" and "user@localhost" are not addresses.
_LABEL: Final = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD: Final = r"(?:[^\W\d_]{2,24}|xn--[A-Za-z0-9-]{1,59})"
EMAIL: Final = Detector(
    name="email",
    pattern=re.compile(
        # (?!REDACTED@): the authority of a URL whose user:password was already masked.
        rf"(?<![\w.%+-])(?!REDACTED@)[\w.%+-]{{1,64}}(?:@|%40)(?:{_LABEL}\.){{1,8}}{_TLD}"
        r"(?![\w-])"
    ),
    hints=("@", "%40"),
    mask=_fixed("[REDACTED:email]"),
    min_length=6,
)


# -- payment cards ---------------------------------------------------------------------

_DIGIT_RUNS: Final = re.compile(r"[0-9]+")
_MIN_GROUP: Final = 3
_ISSUER_FIRST_DIGITS: Final = "23456"


def _card_digits(found: str) -> str:
    return found.replace(" ", "").replace("-", "").replace(".", "")


def _mask_card(found: str) -> str:
    return "****" + _card_digits(found)[-4:]


def _locate_card(found: str) -> tuple[int, int] | None:
    """The card number in a run of grouped digits: the whole run, or its leftmost
    longest run of whole groups that is one ("4111 1111 1111 1111 12/25").

    A run is never split at a dot ("0.4111111111111111" is a decimal fraction), and a
    part is only made of groups of at least ``_MIN_GROUP`` digits, as cards are
    printed (4-4-4-4, 4-6-5): so a run of single digits costs no search at all.
    """
    if is_card_number(_card_digits(found)):
        return 0, len(found)
    groups = [(m.start(), m.end()) for m in _DIGIT_RUNS.finditer(found)]
    count = len(groups)
    for first in range(count):
        start = groups[first][0]
        if (first and found[start - 1] == ".") or found[start] not in _ISSUER_FIRST_DIGITS:
            continue
        digits = ""
        best = None
        for last in range(first, count):
            group_start, group_end = groups[last]
            if group_end - group_start < _MIN_GROUP or len(digits) >= MAX_DIGITS:
                break
            digits += found[group_start:group_end]
            if (first, last) == (0, count - 1):
                break
            ends_at_dot = last < count - 1 and found[group_end] == "."
            if not ends_at_dot and is_card_number(digits):
                best = (start, group_end)  # keep going: the longest card wins
        if best is not None:
            return best
    return None


# 13 to 19 digits, optionally grouped by single spaces, dashes or dots
# ("4111 1111 1111 1111", "4111.1111.1111.1111"). It starts with the digit class and
# checks the characters before it afterwards, so the regex engine can skip ahead to the
# next digit instead of trying every position; a run right after "<digit>." is the
# fraction of a decimal number ("0.4111111111111111"), never a card.
CARD: Final = Detector(
    name="card",
    pattern=re.compile(
        r"[0-9](?<![0-9A-Za-z].)(?<![0-9][.,].)(?:[ .-]?[0-9]){12,18}(?![0-9A-Za-z])"
    ),
    hints=(),
    mask=_mask_card,
    locate=_locate_card,
    min_length=13,
)


# -- JSON Web Tokens -------------------------------------------------------------------

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


# -- Authorization credentials ---------------------------------------------------------

# The HTTP authentication schemes in the IANA registry, plus the API-key ones in use.
_SCHEMES: Final = (
    "bearer|basic|token|digest|negotiate|ntlm|hoba|mutual|vapid|scram-sha-256|scram-sha-1"
    "|aws4-hmac-sha256|apikey|api-key|dpop|gssapi|oauth|privatetoken"
)
# token68 (RFC 9110 §11.2): it must hold a digit or a punctuation character tokens use,
# so prose such as "bearer authentication" is not taken for one.
_TOKEN68: Final = r"(?=[A-Za-z0-9._~+/=-]{0,512}[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,4096}"
# auth-params, as Digest, AWS4-HMAC-SHA256 and Rails' "Token token=…" send them.
_PARAM: Final = r'[A-Za-z][A-Za-z0-9_-]{0,63}=(?:"[^"\n]{0,1024}"|[^\s,"]{1,1024})'
_PARAMS: Final = rf"{_PARAM}(?:[ \t]{{0,8}},[ \t]{{0,8}}{_PARAM}){{0,32}}"


_SCHEME_WORDS: Final = re.compile(
    r"bearer|basic|token|digest|negotiate|ntlm|hoba|mutual|vapid|scram|aws4|api-?key"
    r"|dpop|gssapi|oauth|privatetoken"
)


def _may_hold_authorization(text: str) -> bool:
    # A scheme is followed by a space or a tab: URLs and ids never get further.
    if " " not in text and "\t" not in text:
        return False
    return _SCHEME_WORDS.search(text.lower()) is not None


def _mask_authorization(found: str) -> str:
    scheme = found.split(None, 1)[0]
    return f"{scheme} {MASK}"


# "<scheme> <credentials>" as in an Authorization header, every scheme, any case.
BEARER: Final = Detector(
    name="bearer",
    pattern=re.compile(rf"(?i)(?<![A-Za-z0-9-])(?:{_SCHEMES})[ \t]{{1,8}}(?:{_PARAMS}|{_TOKEN68})"),
    hints=(),
    mask=_mask_authorization,
    min_length=7,
    prefilter=_may_hold_authorization,
)


# -- credentials in URLs, connection strings and name=value text -----------------------

# scheme://user:password@ (and redis://:password@): the password may hold "@", so the
# last "@" before the path ends the userinfo. Possessive repeats (each run up to the
# next "@" is taken whole) keep this linear where a backtracking "…@" would rescan.
_USERINFO: Final = (
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{1,31}://)"
    r"(?P<userinfo>[^\s/?#@:]{0,256}+:(?:[^\s/?#@]{0,256}+@){1,8}+)"
)
# A name whose last part says it holds a secret (db.password, client_secret, x-api-key,
# PWD, refresh_token), anywhere; and the names that are secrets only as URL parameters
# (?code=, &sig=, ;key=), right after ?, &, ; or #.
_SECRET_NAME: Final = (
    r"(?:[A-Za-z0-9]{1,32}[_.-]){0,4}(?:password|passwd|passphrase|pwd|pass|secret(?:[_-]?key)?|token"
    r"|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth)"
)
_QUERY_NAME: Final = (
    r"key|code|sig|signature|jwt|awsaccesskeyid|x-amz-signature|x-amz-credential"
    r"|x-goog-signature"
)
_VALUE: Final = r"""(?:"(?:[^"\\\n]|\\.){0,1024}"|'[^'\n]{0,1024}'|[^\s&;#,'"]{1,1024})"""
_SEPARATOR: Final = r"(?P<sep>[ \t]{0,4}=[ \t]{0,4}|\"[ \t]{0,4}:[ \t]{0,4})"
_CREDENTIALS_PATTERN: Final = re.compile(
    rf"(?i)(?<![A-Za-z0-9+.-]){_USERINFO}"
    rf"|(?:(?<![A-Za-z0-9_.-])(?P<name>{_SECRET_NAME})|(?<=[?&;#])(?P<qname>{_QUERY_NAME}))"
    rf"{_SEPARATOR}(?P<value>{_VALUE})"
)


_SECRET_WORDS: Final = re.compile(r"pass|pwd|secret|token|key|auth|credential|code|sig|jwt")

# The finder below runs case-sensitive expressions on the lower-cased text: it finds
# the secret word first (a plain alternation the regex engine skips through quickly),
# then checks the name around it and the value after it. The single case-insensitive
# expression above does the same work several times slower, as it tries every
# position; it is kept for the rare text whose lower-case form has another length.
_USERINFO_PATTERN: Final = re.compile(rf"(?<![A-Za-z0-9+.-]){_USERINFO}")
# (No word starts with "x": "x-amz-signature" is "signature" after "x-amz-", and an
# alternative starting with a common letter would slow the skip through every "x".)
_NAME_WORDS: Final = re.compile(
    r"password|passwd|passphrase|pwd|pass|secret[_-]?key|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|credentials|credential|auth|awsaccesskeyid"
    r"|signature|sig|key|code|jwt"
)
_QUERY_WORDS: Final = frozenset({"key", "code", "sig", "signature", "jwt", "awsaccesskeyid"})
_QUERY_PREFIXES: Final = frozenset({"", "x-amz-", "x-goog-"})
_ASSIGNED: Final = re.compile(rf"{_SEPARATOR}(?P<value>{_VALUE})")
_NAME_PREFIX: Final = re.compile(r"(?:[A-Za-z0-9]{1,32}[_.-]){1,4}")
_NAME_CHARS_TEXT: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_NAME_CHARS: Final = frozenset(_NAME_CHARS_TEXT)
_LONGEST_PREFIX: Final = 4 * 33


def _find_credentials(text: str) -> list[tuple[int, int]]:
    """Spans of ``scheme://user:password@`` and of secret ``name=value`` pairs."""
    spans: list[tuple[int, int]] = []
    if "://" in text and "@" in text:
        spans += [match.span() for match in _USERINFO_PATTERN.finditer(text)]
    lowered = text.lower()
    if len(lowered) != len(text):
        spans += [
            match.span()
            for match in _CREDENTIALS_PATTERN.finditer(text)
            if match.group("scheme") is None
        ]
    else:
        covered = 0  # findings do not overlap: a word inside a value is not a name
        for word in _NAME_WORDS.finditer(lowered):
            start = word.start()
            if start < covered:
                continue
            # The rest of the name before the word, found by rstrip: C speed.
            before = text[max(0, start - _LONGEST_PREFIX - 1) : start]
            name_start = start - (len(before) - len(before.rstrip(_NAME_CHARS_TEXT)))
            if start - name_start > _LONGEST_PREFIX:
                continue  # inside a longer name than a secret's
            prefix = text[name_start:start]
            if word.group(0) in _QUERY_WORDS:
                # A secret only as a URL parameter: right after ?, &, ; or #.
                if (
                    prefix.lower() not in _QUERY_PREFIXES
                    or name_start == 0
                    or text[name_start - 1] not in "?&;#"
                ):
                    continue
            elif prefix and _NAME_PREFIX.fullmatch(prefix) is None:
                continue  # "bypass", "oauth": the word is not a whole part of the name
            # The value last: it may be long, and most words are not names.
            assigned = _ASSIGNED.match(text, word.end())
            if assigned is None:
                continue
            spans.append((name_start, assigned.end()))
            covered = assigned.end()
        spans.sort()
    kept: list[tuple[int, int]] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def _may_hold_credentials(text: str) -> bool:
    if "@" in text and "://" in text:  # scheme://user:password@
        return True
    if "=" not in text and '"' not in text:  # name=value, "name": value
        return False
    return _SECRET_WORDS.search(text.lower()) is not None


def _mask_credentials(found: str) -> str:
    """``scheme://REDACTED:REDACTED@``, or the name and separator of a pair with its
    value (and the value's quotes) replaced by ``REDACTED``."""
    if found.endswith("@") and "://" in found:
        return f"{found[: found.index('://') + 3]}{REDACTED_WORD}:{REDACTED_WORD}@"
    name_end = 0
    while name_end < len(found) and found[name_end] in _NAME_CHARS:
        name_end += 1
    assigned = _ASSIGNED.match(found, name_end)
    if assigned is None:  # cannot happen: the finder matched this very text
        return MASK
    value = assigned.group("value")
    quote = value[0] if value[0] in "'\"" else ""
    return f"{found[:name_end]}{assigned.group('sep')}{quote}{REDACTED_WORD}{quote}"


CREDENTIALS: Final = Detector(
    name="credentials",
    pattern=_CREDENTIALS_PATTERN,
    hints=(),
    mask=_mask_credentials,
    min_length=4,
    prefilter=_may_hold_credentials,
    finder=_find_credentials,
)


# -- IP addresses ----------------------------------------------------------------------


def _locate_ip(found: str) -> tuple[int, int] | None:
    try:
        ipaddress.ip_address(found)
    except ValueError:
        return None
    return 0, len(found)


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
    locate=_locate_ip,
    min_length=2,
)

# The order detectors run in (see the module docstring).
ORDER: Final[tuple[Detector, ...]] = (CREDENTIALS, JWT, BEARER, EMAIL, CARD, IP)
# By name, in the order the settings' documentation lists them.
BY_NAME: Final[dict[str, Detector]] = {
    d.name: d for d in (CREDENTIALS, EMAIL, CARD, JWT, BEARER, IP)
}

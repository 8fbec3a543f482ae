"""What to redact: attribute-key rules, value detectors and the action each one takes.

Rules are plain values, parsed once from settings text::

    keys:      "customer.email=hash, debug.*=drop, gen_ai.usage.*=keep, x-internal-*"
    detectors: "credentials, email, card, jwt, bearer, ip=hash"

Each item is a case-insensitive glob (keys) or a detector name, optionally followed by
``=`` and an action; without one the action is ``mask``. A text that cannot be parsed
raises :class:`RuleError` naming the item, so a typo is never silently ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from threadline.redaction.detectors import BY_NAME


class RuleError(ValueError):
    """A redaction rule cannot be parsed; the message names the item and what is allowed."""


class Action(enum.Enum):
    """What happens to a value a rule matches."""

    MASK = "mask"  # replaced by "[REDACTED]" (detectors: a mask saying what was found)
    HASH = "hash"  # replaced by a keyed HMAC: equal inputs give equal outputs, per key
    DROP = "drop"  # the attribute is removed (a span name or status text is masked)
    KEEP = "keep"  # left alone, detectors included: exempts keys from broader rules


@dataclass(frozen=True, slots=True)
class KeyRule:
    """Attribute keys matching ``pattern`` (a glob, any case) get ``action``.

    ``numbers``: whether numbers and booleans are touched too. The built-in rules leave
    them alone, so ``*token*`` masks ``auth.token`` but keeps the count in
    ``gen_ai.usage.input_tokens``; rules from settings apply to every value.
    """

    pattern: str
    action: Action = Action.MASK
    numbers: bool = True


@dataclass(frozen=True, slots=True)
class DetectorRule:
    """Run the detector named ``detector`` over string values; act on what it finds."""

    detector: str
    action: Action = Action.MASK


# Credentials under well-known keys, and the headers that carry them (OpenTelemetry
# semantic conventions name captured headers http.request.header.<lower-case name>).
BUILT_IN_KEY_PATTERNS: Final[tuple[str, ...]] = (
    "*password*",
    "*passwd*",
    "*secret*",
    "*token*",
    "*api_key*",
    "*apikey*",
    "*private_key*",
    "*credential*",
    "http.request.header.authorization",
    "http.request.header.proxy-authorization",
    "http.request.header.x-api-key",
    "http.request.header.cookie",
    "http.response.header.set-cookie",
)
BUILT_IN_KEY_RULES: Final[tuple[KeyRule, ...]] = tuple(
    KeyRule(pattern, Action.MASK, numbers=False) for pattern in BUILT_IN_KEY_PATTERNS
)

DEFAULT_DETECTORS: Final = "credentials,email,card,jwt,bearer"

# Attributes holding URLs or their query: sensitive query parameters are masked and
# user:password@ is removed (semantic conventions, url.full and url.query), in the
# URLs a request names (url.original, http.url, http.target) and the headers that
# carry one (Referer, Location).
URL_KEYS: Final[frozenset[str]] = frozenset(
    {
        "url.full",
        "url.original",
        "url.query",
        "http.url",
        "http.target",
        "http.request.header.referer",
        "http.request.header.referrer",
        "http.request.header.origin",
        "http.response.header.location",
        "http.response.header.content-location",
    }
)
QUERY_ONLY_KEYS: Final[frozenset[str]] = frozenset({"url.query"})

# Query parameters whose values are masked, besides those matching the key patterns:
# the semantic conventions' list (signed-URL signatures) plus OAuth/API-key names.
SENSITIVE_QUERY_PARAMETERS: Final[tuple[str, ...]] = (
    "awsaccesskeyid",
    "signature",
    "sig",
    "x-goog-signature",
    "x-amz-signature",
    "x-amz-credential",
    "key",
    "code",
    "auth",
    "jwt",
    "pwd",
    "pass",
    "passphrase",
    "api-key",
)


@dataclass(frozen=True, slots=True)
class RedactionRules:
    """The whole rule set; the default is the built-in rules with the default detectors."""

    key_rules: tuple[KeyRule, ...] = BUILT_IN_KEY_RULES
    detectors: tuple[DetectorRule, ...] = field(
        default_factory=lambda: parse_detectors(DEFAULT_DETECTORS)
    )
    url_keys: frozenset[str] = URL_KEYS


def rules_from_text(keys: str = "", detectors: str = DEFAULT_DETECTORS) -> RedactionRules:
    """Built-in key rules after the rules in ``keys`` (which win), and ``detectors``."""
    return RedactionRules(
        key_rules=(*parse_key_rules(keys), *BUILT_IN_KEY_RULES),
        detectors=parse_detectors(detectors),
    )


def parse_key_rules(text: str) -> tuple[KeyRule, ...]:
    """``"glob[=action], ..."`` to key rules, in order (the first matching rule wins)."""
    rules = []
    for item, pattern, action in _items(text, "key pattern"):
        if not pattern:
            raise RuleError(f"key rule {item!r}: the pattern is empty")
        rules.append(KeyRule(pattern, action))
    return tuple(rules)


def parse_detectors(text: str) -> tuple[DetectorRule, ...]:
    """``"name[=action], ..."`` to detector rules.

    Names: credentials, email, card, jwt, bearer, ip.
    """
    rules = []
    for item, name, action in _items(text, "detector"):
        if name not in BY_NAME:
            raise RuleError(f"unknown detector {item!r}; known: {', '.join(BY_NAME)}")
        if action is Action.KEEP:
            raise RuleError(f"detector {item!r}: keep is for key rules; leave the detector out")
        rules.append(DetectorRule(name, action))
    return tuple(rules)


def _items(text: str, what: str) -> list[tuple[str, str, Action]]:
    items = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, action_text = item.partition("=")
        action = Action.MASK
        if sep:
            try:
                action = Action(action_text.strip().lower())
            except ValueError:
                allowed = ", ".join(a.value for a in Action)
                raise RuleError(
                    f"{what} {item!r}: unknown action {action_text.strip()!r}; use {allowed}"
                ) from None
        items.append((item, name.strip().lower(), action))
    return items

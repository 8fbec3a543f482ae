"""The redaction engine: rules compiled once, then applied to attribute mappings and texts.

A :class:`Redactor` is built once (at ``configure()`` or server start) from
:class:`~threadline.redaction.rules.RedactionRules`; everything per span is lookups and
pre-checked scans:

- each attribute key is matched against the key rules and scanned by the detectors once
  and the decision cached (keys repeat on every span), so per span a key costs one
  dict lookup; a key holding an address or a card number is replaced by its redacted
  form, and only that form is ever listed;
- string values are scanned by the enabled detectors, each skipped unless the value
  contains one of its hints (``@`` for e-mail, ``eyJ`` for JWTs); bytes values are
  scanned as the text they hold, and numbers (ints and floats) that are card numbers
  are masked;
- URL attributes additionally get their query strings masked (:mod:`.urls`);
- journey keys (``session.id``, ``user.id``, ``journey.id``) in which a detector finds
  something are hashed whole instead of masked, so the journey still groups;
- nothing is copied unless something changes: the answer is ``None`` for a clean span.

Redaction should run before anything cuts a value, or a cut value may end in half an
address or card number that no detector recognises. The server redacts before its
limits cut; in the SDK, OpenTelemetry's span limits cut attribute values as they are
set, before any processor sees them. So a redactor given ``cut_lengths`` (the limits
in force) treats a string value of exactly such a length as possibly cut, and masks
a trailing fragment that could be the start of an address, card number or JWT.

The caller collects the names of the fields that changed (never their values) and
stores them under :data:`REDACTED_FIELDS` with :func:`merge_redacted`. A
``threadline.redacted`` attribute that arrives with a span is scanned like any other:
it exempts nothing, and what it held is kept only once redacted.
"""

from __future__ import annotations

import base64
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, TypeVar, cast

from threadline.conventions import JOURNEY_KEYS
from threadline.redaction.detectors import CARD, MASK, ORDER, Detector
from threadline.redaction.keyed_hash import KeyedHash
from threadline.redaction.luhn import MIN_DIGITS, is_card_number
from threadline.redaction.rules import (
    QUERY_ONLY_KEYS,
    SENSITIVE_QUERY_PARAMETERS,
    Action,
    KeyRule,
    RedactionRules,
)
from threadline.redaction.urls import redact_url

# Span attribute listing the fields that were redacted (like logfire's
# "logfire.scrubbed"): names only, so a reader knows data was removed and where.
REDACTED_FIELDS: Final = "threadline.redacted"

# Distinct keys (and query parameter names) whose decisions are remembered; the bound
# keeps hostile input with random keys from growing the cache without limit.
PLAN_CACHE_SIZE: Final = 4096

# Detector results remembered for strings up to this long: most values (methods,
# routes, hosts, user agents) repeat on every span, so each is scanned once per cache
# generation. The bound on length and count caps the memory at about a megabyte.
SCAN_CACHE_MAX_CHARS: Final = 256
SCAN_CACHE_SIZE: Final = 4096

# Objects (resources, instrumentation scopes) whose redacted form is remembered by
# identity: a process has a handful, each shared by all of its spans.
MEMO_SIZE: Final = 256

# The end of a possibly cut value that may be the first part of an address (even one
# cut before its "@": "zelda.qu"), a card number ("4111 1111") or a JWT: its last
# digit groups, or its last word. A value that merely has the limit's length loses
# its last word too: the price of never leaving half a secret. Searched only in the
# last characters (an address is at most ~330).
_CUT_TAIL: Final = re.compile(
    r"(?:(?<![0-9A-Za-z])[0-9](?:[ .-]?[0-9]){3,18}[ .-]?"
    r"|(?<![\w.%+@-])[\w.%+@-]{1,330})\Z"
)
_CUT_TAIL_WINDOW: Final = 400
CUT_MASK: Final = "[REDACTED:cut]"

# Numbers at least this large may be card numbers stored as numbers.
_SMALLEST_CARD: Final = 10 ** (MIN_DIGITS - 1)

_S = TypeVar("_S")
_R = TypeVar("_R")


class EncodedBytes(str):
    """A bytes value as text (its base64, as OTLP/JSON writes bytes), holding the bytes.

    The server's decoder stores bytes values this way; the redactor scans ``raw``, the
    text the bytes hold, since a card number sent as bytes is not visible in base64.
    """

    raw: bytes

    def __new__(cls, raw: bytes) -> EncodedBytes:
        text = super().__new__(cls, base64.b64encode(raw).decode("ascii"))
        text.raw = raw
        return text


class _Drop:
    """Marker for "remove this attribute"."""


_DROP: Final = _Drop()


class _Clean:
    """Marker for a cached scan that found nothing."""


_CLEAN: Final = _Clean()


class _KeyPlan:
    """What happens to the values of one attribute key, decided once per key."""

    __slots__ = ("action", "journey", "numbers", "plain", "query_only", "renamed", "url")

    def __init__(
        self,
        action: Action | None,
        numbers: bool = True,
        url: bool = False,
        query_only: bool = False,
        journey: bool = False,
        renamed: str | _Drop | None = None,
    ) -> None:
        self.action = action
        self.numbers = numbers
        self.url = url
        self.query_only = query_only
        self.journey = journey
        # The key with what the detectors found in it masked (or dropped); None: clean.
        self.renamed = renamed
        # Only the detectors apply: the common case, given a fast path.
        self.plain = action is None and not url and renamed is None


_KEEP: Final = _KeyPlan(Action.KEEP)


class Redactor:
    """Applies one :class:`RedactionRules` set; safe to share between threads."""

    __slots__ = (
        "_card_action",
        "_cut_lengths",
        "_detectors",
        "_hash",
        "_key_rules",
        "_memo",
        "_param_plans",
        "_plans",
        "_rules",
        "_scanned",
        "_url_keys",
    )

    def __init__(
        self, rules: RedactionRules, hash_key: str = "", cut_lengths: Iterable[int] = ()
    ) -> None:
        self._rules = rules
        # Lengths at which a value may have been cut before it got here (see above).
        self._cut_lengths = frozenset(cut_lengths)
        self._hash = KeyedHash(hash_key)
        self._key_rules: tuple[tuple[Callable[[str], object], KeyRule], ...] = tuple(
            (re.compile(fnmatch.translate(rule.pattern.lower())).fullmatch, rule)
            for rule in rules.key_rules
        )
        actions = {rule.detector: rule.action for rule in rules.detectors}
        # In the detectors' own order, not the settings': see detectors.ORDER.
        self._detectors: tuple[tuple[Detector, Action], ...] = tuple(
            (detector, actions[detector.name]) for detector in ORDER if detector.name in actions
        )
        self._card_action = next(
            (action for detector, action in self._detectors if detector is CARD), None
        )
        self._url_keys = rules.url_keys
        self._plans: dict[str, _KeyPlan] = {}
        self._param_plans: dict[str, bool] = {}
        self._scanned: dict[str, str | _Drop | _Clean] = {}
        self._memo: dict[int, tuple[object, object]] = {}

    @property
    def rules(self) -> RedactionRules:
        return self._rules

    def attributes(
        self, attributes: Mapping[str, object], found: list[str], prefix: str = ""
    ) -> dict[str, object] | None:
        """A redacted copy of ``attributes``, or None when no rule matched.

        The key of every changed or dropped attribute is appended to ``found``, after
        ``prefix`` (e.g. ``"events.exception."``).
        """
        copy: dict[str, object] | None = None
        plans = self._plans
        scanned = self._scanned
        for key, value in attributes.items():
            plan = plans.get(key)
            if plan is None:
                plan = self._plan_for(key)
            new: object
            if plan.plain:
                # The per-attribute hot path, inlined: most values are repeated strings
                # already scanned clean, or numbers too small to be card numbers.
                kind = type(value)
                if type(value) is str:  # not `kind`: mypy narrows only on type(value)
                    if scanned.get(value) is _CLEAN:
                        continue
                    new = self._string(value, plan)
                elif type(value) is int or type(value) is float:
                    if value < _SMALLEST_CARD:
                        continue
                    new = self._number(value)
                elif kind is bool:
                    continue
                else:
                    new = self._value(value, plan)
            elif plan is _KEEP:
                continue
            else:
                new = self._value(value, plan)
            renamed = plan.renamed
            if new is value and renamed is None:
                continue
            if copy is None:
                copy = dict(attributes)
            if renamed is None:
                if new is _DROP:
                    del copy[key]
                else:
                    copy[key] = new
                found.append(prefix + key)
                continue
            # The key itself held something: it is listed, and kept, only redacted.
            del copy[key]
            if isinstance(renamed, str):
                if new is not _DROP:
                    copy[renamed] = new
                found.append(prefix + renamed)
            else:
                found.append(prefix + MASK)
        return copy

    def text(self, text: str) -> str | None:
        """``text`` (a span name, a status message) with detector findings masked, or None.

        A detector whose action is ``drop`` masks the whole text: a span keeps its name.
        """
        scrubbed = self._scrub(text)
        if scrubbed is text:
            return None
        return scrubbed if isinstance(scrubbed, str) else MASK

    def memoized(self, source: _S, compute: Callable[[_S, Redactor], _R]) -> _R:
        """``compute(source, self)``, remembered by the identity of ``source``.

        For objects many spans share and nobody changes (a span's resource, its
        instrumentation scope): each is redacted once, not once per span.
        """
        entry = self._memo.get(id(source))
        if entry is not None and entry[0] is source:
            return cast(_R, entry[1])
        result = compute(source, self)
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        # The source is kept with its result, so its id cannot be reused meanwhile.
        self._memo[id(source)] = (source, result)
        return result

    # -- per value -------------------------------------------------------------------

    def _value(self, value: object, plan: _KeyPlan) -> object:
        action = plan.action
        if action is not None:
            if plan.numbers or not isinstance(value, bool | int | float):
                return self._apply(action, value)
            return value
        if isinstance(value, EncodedBytes):
            return self._bytes(value.raw, value, plan)
        if isinstance(value, str):
            return self._string(value, plan)
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return self._number(value)
        if isinstance(value, bytes):
            return self._bytes(value, value, plan)
        if isinstance(value, list | tuple):
            return self._sequence(value, plan)
        if isinstance(value, dict):
            nested = self.attributes(value, [])
            return value if nested is None else nested
        return value

    def _string(self, value: str, plan: _KeyPlan) -> object:
        text = value
        if plan.url and (plan.query_only or "?" in value or "@" in value or "#" in value):
            text = redact_url(
                value,
                query_only=plan.query_only,
                sensitive_name=self._sensitive_parameter,
                sensitive_value=self._holds_findings,
            )
        scrubbed = self._scrub(text)
        if self._cut_lengths and len(value) in self._cut_lengths and isinstance(scrubbed, str):
            scrubbed = _without_cut_tail(scrubbed, value)
        if scrubbed is value or scrubbed is _DROP:
            return scrubbed
        # A journey key must still group the journey: one stable value instead of a mask.
        return self._hash(value) if plan.journey else scrubbed

    def _bytes(self, raw: bytes, value: object, plan: _KeyPlan) -> object:
        """A bytes value: kept when the text it holds is clean, else that text redacted."""
        text = raw.decode("utf-8", "replace")
        new = self._string(text, plan)
        return value if new is text else new

    def _number(self, value: float) -> object:
        action = self._card_action
        if action is None or value < _SMALLEST_CARD:
            return value
        if isinstance(value, float):
            if not value.is_integer():
                return value
            value = int(value)
        digits = str(value)
        if not is_card_number(digits):
            return value
        if action is Action.DROP:
            return _DROP
        return self._hash(digits) if action is Action.HASH else "****" + digits[-4:]

    def _sequence(self, value: Sequence[object], plan: _KeyPlan) -> object:
        items = [self._value(item, plan) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        if any(item is _DROP for item in items):
            return _DROP
        return tuple(items) if isinstance(value, tuple) else items

    def _apply(self, action: Action, value: object) -> object:
        if action is Action.DROP:
            return _DROP
        if action is Action.MASK:
            return value if value == MASK else MASK
        if action is Action.HASH:
            if isinstance(value, list | tuple):
                hashed = [self._hash_one(item) for item in value]
                return tuple(hashed) if isinstance(value, tuple) else hashed
            return self._hash_one(value)
        return value

    def _hash_one(self, value: object) -> str:
        # KeyedHash passes a value already hashed through, so it is not hashed twice.
        return self._hash(value if isinstance(value, str) else str(value))

    # -- detectors -------------------------------------------------------------------

    def _scrub(self, text: str) -> str | _Drop:
        """``text`` with every detector's findings replaced; the same object if none."""
        if len(text) > SCAN_CACHE_MAX_CHARS or (
            self._cut_lengths and len(text) in self._cut_lengths
        ):
            # Not remembered at a cut length: the clean-value fast path would skip the
            # check of its tail.
            return self._scan(text)
        cached = self._scanned.get(text)
        if cached is None:
            cached = self._scan(text)
            if len(self._scanned) >= SCAN_CACHE_SIZE:
                self._scanned.clear()
            self._scanned[text] = _CLEAN if cached is text else cached
            return cached
        return text if isinstance(cached, _Clean) else cached

    def _scan(self, text: str) -> str | _Drop:
        result = text
        for detector, action in self._detectors:
            # Detector.may_occur_in, inlined: this runs for every value not seen before.
            if len(result) < detector.min_length:
                continue
            hints = detector.hints
            if hints:
                for hint in hints:
                    if hint in result:
                        break
                else:
                    continue
            elif detector.prefilter is not None and not detector.prefilter(result):
                continue
            replaced = self._replace(detector, action, result)
            if not isinstance(replaced, str):
                return _DROP
            result = replaced
        return result

    def _replace(self, detector: Detector, action: Action, text: str) -> str | _Drop:
        pieces: list[str] = []
        position = 0
        for start, end in detector.find(text):
            found = text[start:end]
            replacement = self._hash(found) if action is Action.HASH else detector.mask(found)
            if replacement == found:  # already redacted ("password=REDACTED")
                continue
            if action is Action.DROP:
                return _DROP
            pieces.append(text[position:start])
            pieces.append(replacement)
            position = end
        if not pieces:
            return text
        pieces.append(text[position:])
        return "".join(pieces)

    def _holds_findings(self, text: str) -> bool:
        return self._scrub(text) is not text

    # -- decisions cached per key ----------------------------------------------------

    def _plan_for(self, key: str) -> _KeyPlan:
        plan = self._decide(key)
        if len(self._plans) >= PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _decide(self, key: str) -> _KeyPlan:
        lowered = key.lower()
        rule = next((rule for matches, rule in self._key_rules if matches(lowered)), None)
        if rule is not None and rule.action is Action.KEEP:
            return _KEEP
        scrubbed = self._scrub(key)
        if rule is not None:
            renamed = None if scrubbed is key else scrubbed
            return _KeyPlan(rule.action, rule.numbers, renamed=renamed)
        return _KeyPlan(
            None,
            url=lowered in self._url_keys,
            query_only=lowered in QUERY_ONLY_KEYS,
            journey=key in JOURNEY_KEYS,
            renamed=None if scrubbed is key else scrubbed,
        )

    def _sensitive_parameter(self, name: str) -> bool:
        known = self._param_plans.get(name)
        if known is not None:
            return known
        sensitive = name in SENSITIVE_QUERY_PARAMETERS
        if not sensitive:
            for matches, rule in self._key_rules:
                if matches(name):
                    sensitive = rule.action is not Action.KEEP
                    break
        if len(self._param_plans) >= PLAN_CACHE_SIZE:
            self._param_plans.clear()
        self._param_plans[name] = sensitive
        return sensitive


def _without_cut_tail(text: str, value: str) -> str:
    """``text`` with a trailing fragment a cut may have left masked (``value`` if none)."""
    tail = _CUT_TAIL.search(text, max(0, len(text) - _CUT_TAIL_WINDOW))
    if tail is None:
        return text
    cut = text[: tail.start()] + CUT_MASK
    return value if cut == value else cut


def merge_redacted(existing: object, found: Sequence[str]) -> tuple[str, ...]:
    """The value of :data:`REDACTED_FIELDS`: names already listed (by an SDK) plus ``found``."""
    names = set(found)
    if isinstance(existing, list | tuple):
        names.update(item for item in existing if isinstance(item, str))
    elif isinstance(existing, str):
        names.add(existing)
    return tuple(sorted(names))

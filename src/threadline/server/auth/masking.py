"""Sensitive fields: which keys a viewer sees masked, and masking of API answers.

Patterns are globs over attribute keys (``user.id``, ``enduser.*``), matched in any
case (``User.Id``, ``USER_ID``): a sender chooses the spelling of its keys, and a
viewer must not see a user id because it arrived as ``User.ID``. The API also names
some attributes as JSON fields (``user_id`` for ``user.id``), so each pattern matches
its underscore spelling too. Masking walks an answer and replaces:

- the value under any key that matches (``{"user.id": "alice"}``, ``"user_id": ...``);
- the value under a key whose dotted path from an enclosing map matches, so a map
  value nested in an attribute is covered (``{"user": {"id": "alice"}}``,
  ``{"request": {"enduser": {"role": "admin"}}}``);
- the ``value`` of a ``{"key": <matching key>, "value": ...}`` pair, the shape the
  analysis endpoints list attribute values in, and the ``values`` of such a record
  (the users a concentration of slow requests names); inside a pair's nested value
  the keys that extend its key the same way.

A masked value becomes ``MASK`` whatever its type, so nothing of it (not even its
length) is shown. ``null`` stays ``null``: that a span has no user is not a secret.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Final

MASK: Final = "[masked]"
_PAIR_KEY: Final = "key"
_PAIR_VALUES: Final = frozenset({"value", "values"})


class SensitiveFields:
    """A compiled set of glob patterns over attribute keys and their API field names."""

    __slots__ = ("_nested", "_pattern", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip() for p in patterns if p.strip())
        spellings = {s for p in self.patterns for s in (p, p.replace(".", "_"))}
        alternatives = "|".join(f"(?:{fnmatch.translate(s)})" for s in sorted(spellings))
        self._pattern = re.compile(alternatives, re.IGNORECASE) if spellings else None
        # A dotted path whose last keys match a pattern: "answer.attributes.user.id".
        self._nested = (
            re.compile(rf"(?:.*\.)?(?:{alternatives})", re.IGNORECASE | re.DOTALL)
            if spellings
            else None
        )

    @staticmethod
    def parse(text: str) -> SensitiveFields:
        """From the ``sensitive_fields`` setting: patterns separated by commas."""
        return SensitiveFields(text.split(","))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def matches(self, key: str) -> bool:
        """Whether the key ``key`` (any case) is sensitive."""
        return self._pattern is not None and self._pattern.match(key) is not None

    def mask(self, value: object) -> object:
        """``value`` (a decoded JSON answer) with every sensitive field masked."""
        if self._nested is None:
            return value
        return self._mask(value, "", self._nested)

    def _mask(self, value: object, path: str, nested: re.Pattern[str]) -> object:
        if isinstance(value, dict):
            pair_key = value.get(_PAIR_KEY)
            paired = isinstance(pair_key, str)
            masked: dict[str, object] = {}
            for key, item in value.items():
                if paired and key in _PAIR_VALUES:
                    # The value(s) of a key/value pair are reached by the pair's key.
                    inner = str(pair_key)
                    sensitive = nested.fullmatch(inner) is not None
                else:
                    inner = f"{path}.{key}" if path else key
                    sensitive = nested.fullmatch(inner) is not None
                if item is not None and sensitive:
                    masked[key] = MASK
                else:
                    masked[key] = self._mask(item, inner, nested)
            return masked
        if isinstance(value, list):
            return [self._mask(item, path, nested) for item in value]
        return value

"""Sensitive fields: which keys a viewer sees masked, and masking of API answers.

Patterns are globs over attribute keys (``user.id``, ``enduser.*``). The API also
names some attributes as JSON fields (``user_id`` for ``user.id``), so each pattern
matches its underscore spelling too. Masking walks an answer and replaces:

- the value under any key that matches (``{"user.id": "alice"}``, ``"user_id": ...``);
- the ``value`` of a ``{"key": <matching key>, "value": ...}`` pair, the shape the
  analysis endpoints list attribute values in, and the ``values`` of such a record
  (the users a concentration of slow requests names).

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

    __slots__ = ("_pattern", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip() for p in patterns if p.strip())
        spellings = {s for p in self.patterns for s in (p, p.replace(".", "_"))}
        self._pattern = (
            re.compile("|".join(f"(?:{fnmatch.translate(s)})" for s in sorted(spellings)))
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
        return self._pattern is not None and self._pattern.match(key) is not None

    def mask(self, value: object) -> object:
        """``value`` (a decoded JSON answer) with every sensitive field masked."""
        if self._pattern is None:
            return value
        return self._mask(value)

    def _mask(self, value: object) -> object:
        if isinstance(value, dict):
            pair_key = value.get(_PAIR_KEY)
            masked: dict[str, object] = {}
            for key, item in value.items():
                if item is not None and (
                    self.matches(key)
                    or (
                        key in _PAIR_VALUES and isinstance(pair_key, str) and self.matches(pair_key)
                    )
                ):
                    masked[key] = MASK
                else:
                    masked[key] = self._mask(item)
            return masked
        if isinstance(value, list):
            return [self._mask(item) for item in value]
        return value

"""Ids given by their first characters, as git takes commits: one match, or the candidates.

A person copies an id from a log line or a terminal that cut it; the API, the UI and
the CLI accept its first ``MIN_PREFIX_CHARS`` or more characters wherever a trace or
session id goes. The store lists the ids starting so (``Store.ids_with_prefix``);
this module turns that list into the one id, a ``NotFound``, or an ``Ambiguous`` that
carries the candidates.
"""

from __future__ import annotations

from typing import Final

from threadline.server.errors import Ambiguous, NotFound

# Eight hex characters are 32 bits: a prefix that long is unique among tens of
# thousands of traces; fewer would match too much to be worth a lookup.
MIN_PREFIX_CHARS: Final = 8
# Most candidates an ambiguous prefix lists: enough to pick from, a page at most.
MAX_CANDIDATES: Final = 10


def unique_id(found: list[str], prefix: str, *, what: str, none: str) -> str:
    """The one id in ``found`` (ids starting with ``prefix``); ``NotFound`` or ``Ambiguous``."""
    if not found:
        raise NotFound(f"{none} {_shown(prefix)}")
    if len(found) > 1:
        listed = tuple(found[:MAX_CANDIDATES])
        more = len(found) > MAX_CANDIDATES
        count = f"more than {MAX_CANDIDATES}" if more else str(len(found))
        raise Ambiguous(
            f"{count} {what}s start with {_shown(prefix)}; give more characters "
            f"({', '.join(listed)}{', …' if more else ''})",
            listed,
            more=more,
        )
    return found[0]


def _shown(value: str) -> str:
    # Messages quote what was sent, but never more than a line of it.
    return repr(value if len(value) <= 80 else value[:80] + "…")

"""URLs: mask the values of sensitive query parameters and drop credentials in the authority.

Follows the OpenTelemetry semantic conventions for ``url.full`` / ``url.query``: a
sensitive parameter keeps its name and its value becomes ``REDACTED``, and
``user:password@`` becomes ``REDACTED:REDACTED@``. A parameter is sensitive when its
name is (``?access_token=…``) or when its decoded value holds something a detector finds
(``?email=bob%40example.com``). Parameters may be separated by ``&`` or by ``;`` (as
in ``;jsessionid=…`` and older HTML forms). The fragment gets the same treatment,
because OAuth's implicit flow returns ``#access_token=…``. Everything else is kept
byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote_plus

REDACTED: Final = "REDACTED"
_REDACTED_USERINFO: Final = "REDACTED:REDACTED"
# Splits a query into parameters, keeping the separators so the rest is kept as it was.
_SEPARATORS: Final = re.compile(r"([&;])")


def redact_url(
    url: str,
    *,
    query_only: bool,
    sensitive_name: Callable[[str], bool],
    sensitive_value: Callable[[str], bool],
) -> str:
    """``url`` with sensitive parts masked; the same object when nothing was masked.

    ``query_only``: ``url`` is only a query string (``url.query``), not a URL.
    ``sensitive_name`` gets a parameter name (decoded, lower case), ``sensitive_value``
    a decoded value; either returning True masks the value.
    """
    if query_only:
        return _redact_query(url, sensitive_name, sensitive_value)
    rest, hash_mark, fragment = url.partition("#")
    base, question_mark, query = rest.partition("?")
    new_base = _redact_userinfo(base)
    new_query = _redact_query(query, sensitive_name, sensitive_value) if query else query
    new_fragment = (
        _redact_query(fragment, sensitive_name, sensitive_value) if "=" in fragment else fragment
    )
    if new_base is base and new_query is query and new_fragment is fragment:
        return url
    return f"{new_base}{question_mark}{new_query}{hash_mark}{new_fragment}"


def _redact_userinfo(base: str) -> str:
    scheme_end = base.find("://")
    if scheme_end < 0:
        return base
    authority_start = scheme_end + 3
    authority_end = base.find("/", authority_start)
    if authority_end < 0:
        authority_end = len(base)
    at = base.rfind("@", authority_start, authority_end)
    if at < 0:
        return base
    userinfo = base[authority_start:at]
    masked = _REDACTED_USERINFO if ":" in userinfo else REDACTED
    if userinfo == masked:
        return base
    return f"{base[:authority_start]}{masked}{base[at:]}"


def _redact_query(
    query: str,
    sensitive_name: Callable[[str], bool],
    sensitive_value: Callable[[str], bool],
) -> str:
    parts = _SEPARATORS.split(query) if ";" in query else query.split("&")
    changed = False
    for index, part in enumerate(parts):
        if part == "&" or part == ";":
            continue
        name, equals, value = part.partition("=")
        if not equals or not value or value == REDACTED:
            continue
        if sensitive_name(_decoded(name).lower()) or sensitive_value(_decoded(value)):
            parts[index] = f"{name}={REDACTED}"
            changed = True
    if not changed:
        return query
    return "".join(parts) if ";" in query else "&".join(parts)


def _decoded(text: str) -> str:
    # Most names and values are plain: skip the decoder's work for them.
    return unquote_plus(text) if "%" in text or "+" in text else text

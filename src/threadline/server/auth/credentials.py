"""Where a request's token is read from: ``Authorization: Bearer`` or the UI's cookie.

Programs (exporters, the CLI, scripts) send the header; a browser gets the cookie
from ``/login`` and sends it with every page and API call of the UI. The cookie is
``HttpOnly`` (page scripts cannot read it) and ``SameSite=Strict`` (another site
cannot make the browser send it), so the UI's own ``fetch`` calls need no token.
"""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Final

TOKEN_COOKIE: Final = "threadline_token"
_BEARER: Final = "bearer"


def presented_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of an ASGI header list: the Bearer header wins over the cookie."""
    cookie_token: str | None = None
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == b"authorization":
            scheme, _, token = raw_value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == _BEARER and token.strip():
                return token.strip()
        elif name == b"cookie" and cookie_token is None:
            cookie_token = _cookie_token(raw_value.decode("latin-1"))
    return cookie_token


def _cookie_token(header: str) -> str | None:
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(TOKEN_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None

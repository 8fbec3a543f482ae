"""``/login`` and ``/logout``: how a browser gets (and drops) the UI's token cookie.

``GET /login`` shows a one-field form; ``POST /login`` checks the token and, if it
is known, sets it as an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` when
the server speaks HTTPS) and sends the browser back to the page it came from.
The page is self-contained (no script, no style) so it needs nothing the login
would protect.
"""

from __future__ import annotations

import html
from typing import Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from threadline.server.auth.credentials import TOKEN_COOKIE
from threadline.server.auth.roles import LOGIN_PATH, LOGOUT_PATH
from threadline.server.auth.tokens import TokenTable

# A form holding one token and a path; anything longer is not our form.
MAX_FORM_BYTES: Final = 4096
# How long the browser keeps the cookie: a working day, then log in again.
COOKIE_MAX_AGE_S: Final = 12 * 3600

_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Threadline — log in</title></head>
<body><h1>Threadline</h1>{message}
<form method="post" action="{action}">
<label>Access token <input type="password" name="token" autocomplete="current-password"
 autofocus required></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
</form></body></html>
"""


def build_login_router(tokens: TokenTable, *, secure_cookie: bool) -> APIRouter:
    """The login and logout pages for ``tokens``; cookies get ``Secure`` over HTTPS."""
    router = APIRouter(include_in_schema=False)

    @router.get(LOGIN_PATH)
    async def login_form(next: str = "/") -> HTMLResponse:
        return _form(_local_path(next))

    @router.post(LOGIN_PATH)
    async def login(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return _form("/", "The form is too large.", status=413)
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4)
        token = (fields.get("token") or [""])[0]
        target = _local_path((fields.get("next") or ["/"])[0])
        if not token or tokens.find(token) is None:
            return _form(target, "That token is not valid.", status=401)
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
        )
        return response

    @router.get(LOGOUT_PATH)
    async def logout() -> Response:
        response = RedirectResponse(LOGIN_PATH, status_code=303, headers=_HEADERS)
        response.delete_cookie(TOKEN_COOKIE, httponly=True, samesite="strict")
        return response

    return router


def _local_path(target: str) -> str:
    """Only a path on this server: ``next`` must not send a browser to another site."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _form(target: str, message: str = "", *, status: int = 200) -> HTMLResponse:
    page = _PAGE.format(
        message=f"<p>{html.escape(message)}</p>" if message else "",
        action=LOGIN_PATH,
        next=html.escape(target, quote=True),
    )
    return HTMLResponse(page, status_code=status, headers=_HEADERS)

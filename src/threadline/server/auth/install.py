"""Wiring access control into an app: the middleware and the login pages."""

from __future__ import annotations

from fastapi import FastAPI

from threadline.server.auth.login import build_login_router
from threadline.server.auth.masking import SensitiveFields
from threadline.server.auth.middleware import AccessControl
from threadline.server.auth.tokens import TokenTable, load_tokens
from threadline.settings import ServerSettings


def install_access_control(
    app: FastAPI, settings: ServerSettings, tokens: TokenTable | None = None
) -> TokenTable:
    """Protect every route of ``app`` with the tokens of ``settings``; returns them.

    ``tokens`` is that table when the caller has loaded it already (the runner checks
    exposure with it first), so a tokens file is read once.
    """
    if tokens is None:
        tokens = load_tokens(settings)
    app.add_middleware(
        AccessControl, tokens=tokens, sensitive=SensitiveFields.parse(settings.sensitive_fields)
    )
    app.include_router(build_login_router(tokens, secure_cookie=settings.serves_tls))
    return tokens

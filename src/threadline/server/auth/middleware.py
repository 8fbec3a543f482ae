"""``AccessControl``: the ASGI middleware that authenticates and authorizes every request.

It runs before routing, so an endpoint added by any router is covered without a
line of its own (the policy lives in ``roles.required_role``). For each request:

1. With no tokens configured the request acts as the anonymous admin: the server
   is open, which ``exposure`` only allows on loopback (or with ``--insecure``).
2. Otherwise the token (``Authorization: Bearer`` or the UI cookie) must be known
   (401) and its role must allow the request (403).
3. A viewer may not look up or filter by a sensitive field (403): a search by
   ``user_id`` would tell whether a user exists and what they did. Nor may it filter
   by a keyed hash (``h_…``, ``u_…``), whatever the key: with the hash key known (the
   built-in one), a match would confirm a guessed e-mail address or id.
4. A viewer's ``/api`` JSON answers are rewritten with sensitive fields masked.

Refusals are answered in the shape the caller expects: an OTLP ``Status`` on
``/v1/traces``, ``{"error": ...}`` on ``/api``, and a redirect to ``/login`` for a
browser asking for a UI page without a valid cookie.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote

from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline.conventions import API_PREFIX, METRICS_PATH, OTLP_PATHS
from threadline.redaction import is_hashed
from threadline.server.auth.context import store_principal
from threadline.server.auth.credentials import presented_token
from threadline.server.auth.masking import SensitiveFields
from threadline.server.auth.roles import ANONYMOUS, LOGIN_PATH, Principal, Role, required_role
from threadline.server.auth.tokens import TokenTable
from threadline.server.errors import Forbidden, ThreadlineError, Unauthorized
from threadline.server.ingest.decode import PayloadFormat
from threadline.server.ingest.receiver import error_response, payload_format_of

# Path prefixes whose next segment is a journey key, and the attribute it stands for.
_KEYED_PATHS: Final = (
    (f"{API_PREFIX}/users/", "user.id"),
    (f"{API_PREFIX}/journeys/", "session.id"),
)
# A filter given as ``attr=key=value`` names its attribute before the "=".
_ATTRIBUTE_FILTER: Final = "attr"
# Keyed hashes: redaction's ``hash`` action and the SDK's pseudonymous user ids.
_HASH_PREFIXES: Final = ("h_", "u_")
# The API's own description is not data; it names fields but holds no values.
_UNMASKED_PATHS: Final = frozenset({f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs"})


class AccessControl:
    """Authenticate, authorize and (for viewers) mask; see the module docstring."""

    def __init__(self, app: ASGIApp, *, tokens: TokenTable, sensitive: SensitiveFields) -> None:
        self.app = app
        self.tokens = tokens
        self.sensitive = sensitive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.tokens.enabled:
            store_principal(scope, ANONYMOUS)
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        token = presented_token(scope.get("headers", ()))
        principal = self.tokens.find(token) if token is not None else None
        needed = required_role(scope["method"], path)
        try:
            if needed is not None:
                principal = self._authorize(principal, needed, token is not None, scope)
        except ThreadlineError as exc:
            await self._refusal(exc, scope)(scope, receive, send)
            return
        if principal is not None:
            store_principal(scope, principal)
        if (
            principal is not None
            and not principal.sees_sensitive_fields
            and self.sensitive
            and path.startswith(API_PREFIX + "/")
            and path not in _UNMASKED_PATHS
        ):
            await self.app(scope, receive, _MaskingSend(send, self.sensitive))
            return
        await self.app(scope, receive, send)

    def _authorize(
        self,
        principal: Principal | None,
        needed: frozenset[Role],
        presented: bool,
        scope: Scope,
    ) -> Principal:
        if principal is None:
            if presented:
                raise Unauthorized("the access token is not valid")
            raise Unauthorized("an access token is required: send `Authorization: Bearer <token>`")
        if not principal.role.allows(needed):
            roles = " or ".join(sorted(role.value for role in needed | {Role.ADMIN}))
            raise Forbidden(
                f"a {principal.role.value} token may not {scope['method']} {scope['path']}; "
                f"it needs a token of role {roles}"
            )
        if not principal.sees_sensitive_fields and self.sensitive:
            self._refuse_sensitive_lookups(scope)
        return principal

    def _refuse_sensitive_lookups(self, scope: Scope) -> None:
        path: str = scope["path"]
        for prefix, key in _KEYED_PATHS:
            if path.startswith(prefix) and self.sensitive.matches(key):
                raise Forbidden(f"{key} is a sensitive field: a viewer token may not look it up")
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            key, _, expected = value.partition("=") if name == _ATTRIBUTE_FILTER else (name, "", "")
            if self.sensitive.matches(key):
                raise Forbidden(f"{key} is a sensitive field: a viewer token may not filter by it")
            if any(is_hashed(expected, prefix) for prefix in _HASH_PREFIXES):
                raise Forbidden(
                    f"{key} is filtered by a keyed hash of a redacted value: a viewer token may "
                    "not filter by hashed values, since a match confirms a guessed value"
                )

    def _refusal(self, exc: ThreadlineError, scope: Scope) -> Response:
        path: str = scope["path"]
        if path in OTLP_PATHS:
            return _otlp_refusal(exc, scope)
        if path.startswith(API_PREFIX + "/") or path == API_PREFIX:
            return JSONResponse({"error": exc.message}, exc.status_code, headers=exc.headers)
        # A scraper is no browser: it gets the status, not a redirect to the login page.
        if (
            isinstance(exc, Unauthorized)
            and scope["method"] in ("GET", "HEAD")
            and path != METRICS_PATH
        ):
            # A browser on a UI page: send it to log in, then back here.
            target = path + (
                f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
            )
            return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", 303)
        return PlainTextResponse(exc.message + "\n", exc.status_code, headers=exc.headers)


def _otlp_refusal(exc: ThreadlineError, scope: Scope) -> Response:
    content_type = None
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type":
            content_type = value.decode("latin-1")
    try:
        payload_format = payload_format_of(content_type)
    except ThreadlineError:
        payload_format = PayloadFormat.JSON
    return error_response(exc, payload_format)


class _MaskingSend:
    """Buffers a JSON answer and sends it again with sensitive fields masked."""

    def __init__(self, send: Send, sensitive: SensitiveFields) -> None:
        self._send = send
        self._sensitive = sensitive
        self._start: MutableMapping[str, Any] | None = None
        self._chunks: list[bytes] = []
        self._passthrough = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = b""
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    content_type = value
            if not content_type.startswith(b"application/json"):
                self._passthrough = True
                await self._send(message)
                return
            self._start = dict(message)
            return
        if self._passthrough or message["type"] != "http.response.body":
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        original = b"".join(self._chunks)
        body = self._masked(original)
        start = self._start or {"type": "http.response.start", "status": 200, "headers": []}
        if body is None:
            # Not JSON after all (or a HEAD answer without a body): send it as it was.
            await self._send(start)
            body = original
        else:
            headers = [
                (n, v) for n, v in start.get("headers", ()) if n.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(body)).encode("latin-1")))
            await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    def _masked(self, body: bytes) -> bytes | None:
        try:
            value = json.loads(body)
        except ValueError:
            return None
        masked = self._sensitive.mask(value)
        return json.dumps(masked, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

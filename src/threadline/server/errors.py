"""The server's one error tree; each error knows the HTTP status it answers with.

ThreadlineError
├── BadRequest            400  the request is malformed; the message says how
│   ├── InvalidParameter  400  a query parameter has a value outside what is allowed
│   └── InvalidPayload    400  a field of an OTLP payload is invalid; ``field`` names it
├── Unauthorized          401  no access token, or one the server does not know
├── Forbidden             403  the token's role may not do this
├── NotFound              404  the trace / journey asked for does not exist
├── Ambiguous             409  an id prefix matches several ids; ``candidates`` lists them
├── RequestTimeout        408  the client took too long to send the request body
├── PayloadTooLarge       413  body (or its decompressed form) over the limit
├── UnsupportedMediaType  415  content type or encoding we do not decode
└── Unavailable           503  the store cannot take more writes now (Retry-After)
    └── TooManyRequests   429  this token sent more than its rate allows (Retry-After)
"""

from __future__ import annotations

from typing import ClassVar


class ThreadlineError(Exception):
    status_code: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers every answer to this error carries, whatever shape its body has."""
        return {}

    @property
    def details(self) -> dict[str, object]:
        """Fields a JSON answer carries beside ``error`` (none for most errors)."""
        return {}


class BadRequest(ThreadlineError):
    status_code = 400


class InvalidParameter(BadRequest):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"query parameter {name!r}: {problem}")
        self.name = name


class InvalidPayload(BadRequest):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class Unauthorized(ThreadlineError):
    status_code = 401

    @property
    def headers(self) -> dict[str, str]:
        # A 401 names the scheme the client should authenticate with (RFC 9110 §11.6.1).
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ThreadlineError):
    status_code = 403


class NotFound(ThreadlineError):
    status_code = 404


class Ambiguous(ThreadlineError):
    """An id given by its first characters matches more than one stored id."""

    status_code = 409

    def __init__(self, message: str, candidates: tuple[str, ...], *, more: bool) -> None:
        super().__init__(message)
        self.candidates = candidates
        self.more = more  # more ids match than ``candidates`` lists

    @property
    def details(self) -> dict[str, object]:
        return {"candidates": list(self.candidates), "more_candidates": self.more}


class RequestTimeout(ThreadlineError):
    """The client took too long to send the request body."""

    status_code = 408


class PayloadTooLarge(ThreadlineError):
    status_code = 413


class UnsupportedMediaType(ThreadlineError):
    status_code = 415


class Unavailable(ThreadlineError):
    status_code = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class TooManyRequests(Unavailable):
    """A client over its own rate: like ``Unavailable`` it carries ``Retry-After``."""

    status_code = 429

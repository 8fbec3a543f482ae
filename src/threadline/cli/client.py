"""A small client for the REST API, used by the CLI's read commands.

The CLI never opens the DuckDB file: the running server owns it (no second
process may open it), so every read goes through ``/api``. Failures become one
``ApiError`` whose message is fit to print as is: the server's own
``{"error": ...}`` text, or a sentence saying the server cannot be reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from threadline import conventions

# Reads answer in milliseconds; a server that takes this long is stuck or overloaded,
# and a person at a terminal is better told so than left waiting.
TIMEOUT_S: Final = 15.0


class ApiError(Exception):
    """The API could not answer; the message says why, for a person to read."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ServerUnreachable(ApiError):
    """Nothing answered at the server URL."""


class ThreadlineClient:
    def __init__(self, base_url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def get(self, path: str, params: Mapping[str, str | int | None] | None = None) -> Any:
        """The JSON answer of ``GET /api<path>``; parameters that are ``None`` are left out."""
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        url = f"{self.base_url}{conventions.API_PREFIX}{path}"
        try:
            response = httpx.get(url, params=query, timeout=self._timeout_s)
        except httpx.InvalidURL as exc:
            raise ApiError(f"{self.base_url!r} is not a server URL ({exc})") from exc
        except httpx.TransportError as exc:
            reason = (
                f"no answer within {self._timeout_s:g} s"
                if isinstance(exc, httpx.TimeoutException)
                else (str(exc) or type(exc).__name__)
            )
            raise ServerUnreachable(
                f"cannot reach Threadline at {self.base_url} — is `threadline serve` running?"
                f" ({reason})"
            ) from exc
        if response.is_success:
            try:
                return response.json()
            except ValueError as exc:
                raise ApiError(
                    f"{self.base_url} answered with something that is not JSON; "
                    "is it a Threadline server?",
                    response.status_code,
                ) from exc
        raise ApiError(_error_message(response), response.status_code)

    def stats(self) -> Any:
        return self.get("/stats")

    def services(self) -> Any:
        return self.get("/services")

    def traces(self, **filters: str | int | None) -> Any:
        return self.get("/traces", filters)

    def trace(self, trace_id: str) -> Any:
        return self.get(f"/traces/{_segment(trace_id)}")

    def journeys(self, *, order: str = "recent", limit: int | None = None) -> Any:
        return self.get("/journeys", {"order": order, "limit": limit})

    def session_journey(self, session_id: str) -> Any:
        return self.get(f"/journeys/{_segment(session_id)}")

    def user_journey(self, user_id: str) -> Any:
        return self.get(f"/users/{_segment(user_id)}/journey")


def _segment(value: str) -> str:
    # Ids are opaque text: "/", "?" or "#" in one must stay inside its path segment.
    return quote(value, safe="")


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return f"the server answered {response.status_code} {response.reason_phrase}"

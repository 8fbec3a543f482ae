"""A small client for the REST API, used by the CLI's read commands.

The CLI never opens the DuckDB file: the running server owns it (no second
process may open it), so every read goes through ``/api``. Failures become one
``ApiError`` whose message is fit to print as is: the server's own
``{"error": ...}`` text, or a sentence saying the server cannot be reached.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import httpx

from threadline import conventions

# Reads answer in milliseconds (aggregates over millions of spans in about a second);
# a server that takes this long is stuck or overloaded, and a person at a terminal
# is better told so than left waiting.
TIMEOUT_S: Final = 15.0

# The access token sent as ``Authorization: Bearer`` when the server has tokens.
TOKEN_ENV: Final = "THREADLINE_TOKEN"
# A CA certificate (PEM) to trust for an HTTPS server with a private or self-signed one.
CA_CERT_ENV: Final = "THREADLINE_CA_CERT"

# A query parameter: one value, several (repeated in the URL), or absent.
ParamValue = str | int | float | Sequence[str] | None


class ApiError(Exception):
    """The API could not answer; the message says why, for a person to read."""

    def __init__(
        self, message: str, status_code: int | None = None, candidates: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        # The ids an ambiguous prefix matched (a 409 answer), to list one a line.
        self.candidates = tuple(candidates)


class ServerUnreachable(ApiError):
    """Nothing answered at the server URL."""


class ThreadlineClient:
    def __init__(
        self, base_url: str, *, timeout_s: float = TIMEOUT_S, token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._verify: str | bool = os.environ.get(CA_CERT_ENV) or True

    def get(self, path: str, params: Mapping[str, ParamValue] | None = None) -> Any:
        """The JSON answer of ``GET /api<path>``; parameters that are ``None`` are left out.

        A sequence value repeats the parameter (``attr=a=1&attr=b=2``).
        """
        return self.send("GET", path, params)

    def send(self, method: str, path: str, params: Mapping[str, ParamValue] | None = None) -> Any:
        """The JSON answer of ``<method> /api<path>``, with the access token if one is set."""
        query: list[tuple[str, str | int | float | bool | None]] = []
        for key, value in (params or {}).items():
            if value is None:
                continue
            if isinstance(value, str | int | float):
                query.append((key, str(value)))
            else:
                query.extend((key, item) for item in value)
        url = f"{self.base_url}{conventions.API_PREFIX}{path}"
        try:
            response = httpx.request(
                method,
                url,
                params=query,
                headers=self._headers,
                timeout=self._timeout_s,
                verify=self._verify,
            )
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
        raise ApiError(_error_message(response), response.status_code, _candidates(response))

    def stats(self) -> Any:
        return self.get("/stats")

    def services(self) -> Any:
        return self.get("/services")

    def traces(self, **filters: ParamValue) -> Any:
        return self.get("/traces", filters)

    def trace(self, trace_id: str) -> Any:
        """The whole trace: a large one is served in pages, fetched here one after another."""
        path = f"/traces/{_segment(trace_id)}"
        answer = self.get(path)
        spans = list(answer["spans"])
        next_offset = answer.get("next_offset")
        # Each page holds at least one span, so the trace's span count bounds the loop.
        for _ in range(int(answer.get("span_count", 0))):
            if next_offset is None:
                break
            page = self.get(path, {"offset": next_offset})
            spans += page["spans"]
            next_offset = page.get("next_offset")
        return {**answer, "spans": spans, "offset": 0, "next_offset": None}

    def critical_path(self, trace_id: str) -> Any:
        return self.get(f"/traces/{_segment(trace_id)}/critical-path")

    def compare(self, baseline: str, candidate: str) -> Any:
        return self.get("/compare", {"a": baseline, "b": candidate})

    def journeys(
        self, *, order: str = "recent", limit: int | None = None, failed: bool | None = None
    ) -> Any:
        flag = None if failed is None else str(failed).lower()
        return self.get("/journeys", {"order": order, "limit": limit, "failed": flag})

    def session_journey(self, session_id: str) -> Any:
        return self.get(f"/journeys/{_segment(session_id)}")

    def narrative(self, session_id: str) -> Any:
        return self.get(f"/journeys/{_segment(session_id)}/narrative")

    def operations(self, **params: ParamValue) -> Any:
        return self.get("/operations", params)

    def service_red(self, service: str, **params: ParamValue) -> Any:
        return self.get(f"/services/{_segment(service)}/red", params)

    def service_map(self, **params: ParamValue) -> Any:
        return self.get("/service-map", params)

    def slow(self, **params: ParamValue) -> Any:
        return self.get("/slow", params)

    def error_hotspots(self, **params: ParamValue) -> Any:
        return self.get("/errors/hotspots", params)

    def propagation(self, **params: ParamValue) -> Any:
        return self.get("/propagation", params)

    def user_journey(self, user_id: str) -> Any:
        return self.get(f"/users/{_segment(user_id)}/journey")

    def erase_user(self, user_id: str, *, as_given: bool = False) -> Any:
        params = {"as_given": "true"} if as_given else None
        return self.send("DELETE", f"/users/{_segment(user_id)}", params)


def _segment(value: str) -> str:
    # Ids are opaque text: "/", "?" or "#" in one must stay inside its path segment.
    return quote(value, safe="")


def _candidates(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    found = body.get("candidates") if isinstance(body, dict) else None
    return [str(c) for c in found] if isinstance(found, list) else []


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

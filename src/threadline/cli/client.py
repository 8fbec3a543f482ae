"""A small client for the REST API, used by the CLI's read commands.

The CLI never opens the DuckDB file: the running server owns it (no second
process may open it), so every read goes through ``/api``. Failures become one
``ApiError`` whose message is fit to print as is: the server's own
``{"error": ...}`` text, or a sentence saying the server cannot be reached.

It speaks HTTP with the standard library: a read command spends most of its life
starting up, and ``urllib.request`` imports in a fraction of the time an HTTP client
package takes (``bench/cli_startup.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from threadline import conventions

if TYPE_CHECKING:
    import ssl

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
        self._ca_file = os.environ.get(CA_CERT_ENV) or None

    def get(self, path: str, params: Mapping[str, ParamValue] | None = None) -> Any:
        """The JSON answer of ``GET /api<path>``; parameters that are ``None`` are left out.

        A sequence value repeats the parameter (``attr=a=1&attr=b=2``).
        """
        return self.send("GET", path, params)

    def send(self, method: str, path: str, params: Mapping[str, ParamValue] | None = None) -> Any:
        """The JSON answer of ``<method> /api<path>``, with the access token if one is set."""
        query: list[tuple[str, str]] = []
        for key, value in (params or {}).items():
            if value is None:
                continue
            if isinstance(value, str | int | float):
                query.append((key, str(value)))
            else:
                query.extend((key, item) for item in value)
        if not self.base_url.startswith(("http://", "https://")):
            raise ApiError(f"{self.base_url!r} is not a server URL (it starts http:// or https://)")
        url = f"{self.base_url}{conventions.API_PREFIX}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        # Imported on the first request (they bring in ssl and email): `--help` and usage
        # errors never need them.
        import http.client
        import urllib.error
        import urllib.request

        try:
            request = urllib.request.Request(url, method=method, headers=self._headers)
            context = self._tls_context() if request.type == "https" else None
            with urllib.request.urlopen(
                request, timeout=self._timeout_s, context=context
            ) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:  # an answer, with a status that is not 2xx
            status, body = exc.code, exc.read()
            exc.close()
            raise ApiError(
                _error_message(status, exc.reason, body), status, _candidates(body)
            ) from None
        except (ValueError, http.client.InvalidURL) as exc:  # no scheme, unknown one, bad port
            raise ApiError(f"{self.base_url!r} is not a server URL ({exc})") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise ServerUnreachable(
                f"cannot reach Threadline at {self.base_url} — is `threadline serve` running?"
                f" ({self._reason(exc)})"
            ) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ApiError(
                f"{self.base_url} answered with something that is not JSON; "
                "is it a Threadline server?",
                status,
            ) from exc

    def _tls_context(self) -> ssl.SSLContext:
        import ssl

        return ssl.create_default_context(cafile=self._ca_file)

    def _reason(self, exc: Exception) -> str:
        import urllib.error

        reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            return f"no answer within {self._timeout_s:g} s"
        return str(reason) or type(reason).__name__

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


def _candidates(body: bytes) -> list[str]:
    """The ids an ambiguous prefix matched, from a 409's body (none when it has none)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return []
    found = answer.get("candidates") if isinstance(answer, dict) else None
    return [str(c) for c in found] if isinstance(found, list) else []


def _error_message(status: int, reason: object, body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        for key in ("error", "detail"):
            if isinstance(answer.get(key), str):
                return str(answer[key])
    return f"the server answered {status} {reason}"

"""Access control over every route the app serves × every role, and what viewers see."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final

import httpx
import pytest

from support.live_server import LiveServer, live_server
from threadline.server.auth import MASK

from .conftest import (
    ADMIN_TOKEN,
    INGEST_TOKEN,
    PROTOBUF,
    TOKENS,
    VIEWER_TOKEN,
    WRONG_TOKEN,
    bearer,
    span_request,
)

TRACE: Final = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_TRACE: Final = "5bf92f3577b34da6a3ce929d0e0e4737"
SECRETS: Final = {"user.id": "alice-the-customer", "client.address": "203.0.113.77"}
PLAIN: Final = {"session.id": "session-alpha", "http.route": "/checkout"}

ROLES: Final = {
    "admin": ADMIN_TOKEN,
    "viewer": VIEWER_TOKEN,
    "ingest": INGEST_TOKEN,
    "no token": None,
    "wrong token": WRONG_TOKEN,
}
# What each kind of path parameter is filled with: real where that helps (the
# trace exists), otherwise any valid-looking text.
PATH_VALUES: Final = {"trace_id": TRACE, "session_id": "session-alpha", "user_id": "nobody"}
_PARAMETER: Final = re.compile(r"\{([a-z_]+)(?::path)?\}")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("rbac") / "spans.duckdb", tokens=TOKENS) as served:
        for trace in (TRACE, OTHER_TRACE):
            body = span_request(trace, attributes={**SECRETS, **PLAIN}, spans=3)
            response = httpx.post(
                f"{served.url}/v1/traces",
                content=body.SerializeToString(),
                headers={"content-type": PROTOBUF, **bearer(INGEST_TOKEN)},
            )
            assert response.status_code == 200
        yield served


def concrete(path: str) -> str:
    return _PARAMETER.sub(lambda m: PATH_VALUES.get(m.group(1), "checkout"), path)


def endpoints(served: LiveServer) -> list[tuple[str, str, str]]:
    """(method, template, concrete path) of every route the app serves, found at test time."""
    return [
        (method, path, concrete(path))
        for path, methods in _routes(served.app.routes, "")
        for method in sorted(methods - {"HEAD"})
    ]


def _routes(routes: Sequence[object], prefix: str) -> Iterator[tuple[str, set[str]]]:
    for route in routes:
        # APIRoute and Starlette's Route both have a path and methods.
        methods: set[str] | None = getattr(route, "methods", None)
        path: str | None = getattr(route, "path", None)
        if methods is not None and path is not None:
            yield prefix + path, set(methods)
            continue
        # FastAPI 0.16x keeps an included router whole instead of copying its routes.
        included = getattr(route, "original_router", None)
        context = getattr(route, "include_context", None)
        if included is not None:
            yield from _routes(included.routes, prefix + str(getattr(context, "prefix", "")))


def allowed(method: str, template: str, role: str) -> bool:
    """The access policy of docs/security.md, written out independently of the code."""
    if role in ("no token", "wrong token"):
        return False
    if role == "admin":
        return True
    if template in OTLP_TEMPLATES:
        return role == "ingest"
    if method == "GET" and template == "/api/sampling":
        return True  # services poll their sampling rules with their ingest token
    if method != "GET" or role != "viewer":
        return False
    # user.id is sensitive by default: a viewer may not look a user up.
    return not template.startswith("/api/users/")


PUBLIC_PATHS: Final = ("/login", "/logout", "/healthz", "/readyz")
OTLP_TEMPLATES: Final = ("/v1/traces", "/v1/logs")


def refused(response: httpx.Response) -> bool:
    redirected_to_login = response.status_code == 303 and response.headers.get(
        "location", ""
    ).startswith("/login")
    return response.status_code in (401, 403) or redirected_to_login


def test_every_route_answers_each_role_as_the_policy_says(secured: LiveServer) -> None:
    """Each endpoint, including ones added later, refuses exactly the roles it should."""
    routes = endpoints(secured)
    assert len(routes) > 15  # the API, ingest, UI and login are all enumerated
    mismatches = []
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for method, template, path in routes:
            if template in PUBLIC_PATHS:
                continue  # public by design; tested on their own below
            for role, token in ROLES.items():
                headers = bearer(token)
                if template in OTLP_TEMPLATES:
                    headers["content-type"] = PROTOBUF
                response = client.request(method, path, headers=headers, content=b"")
                assert response.status_code < 500, (method, path, role, response.text)
                if refused(response) == allowed(method, template, role):
                    mismatches.append((method, path, role, response.status_code))
    assert mismatches == []


def test_missing_and_wrong_tokens_get_401_and_wrong_roles_403(secured: LiveServer) -> None:
    """401 says "who are you" (with WWW-Authenticate), 403 says "not with this token"."""
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        missing = client.get("/api/stats")
        wrong = client.get("/api/stats", headers=bearer(WRONG_TOKEN))
        ingest_reading = client.get("/api/stats", headers=bearer(INGEST_TOKEN))
        viewer_sending = client.post(
            "/v1/traces",
            content=b"",
            headers={"content-type": PROTOBUF, **bearer(VIEWER_TOKEN)},
        )
        exporter_missing = client.post(
            "/v1/traces", content=b"", headers={"content-type": PROTOBUF}
        )
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert exporter_missing.status_code == 401
    assert exporter_missing.headers["www-authenticate"] == "Bearer"
    assert "token" in missing.json()["error"]
    assert ingest_reading.status_code == 403
    assert viewer_sending.status_code == 403
    # OTLP clients get an OTLP answer: a protobuf google.rpc.Status.
    assert viewer_sending.headers["content-type"] == PROTOBUF


def test_viewer_sees_sensitive_fields_masked(secured: LiveServer) -> None:
    """A viewer reads the trace with user.id and client.address masked; admin sees them."""
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        as_viewer = client.get(f"/api/traces/{TRACE}", headers=bearer(VIEWER_TOKEN)).json()
        as_admin = client.get(f"/api/traces/{TRACE}", headers=bearer(ADMIN_TOKEN)).json()
        listed = client.get("/api/traces", headers=bearer(VIEWER_TOKEN)).json()
    for span in as_viewer["spans"]:
        assert span["attributes"]["user.id"] == MASK
        assert span["attributes"]["client.address"] == MASK
        assert span["attributes"]["http.route"] == "/checkout"
        assert span["user_id"] == MASK
        assert span["session_id"] == "session-alpha"
    for span in as_admin["spans"]:
        assert span["attributes"]["user.id"] == SECRETS["user.id"]
        assert span["user_id"] == SECRETS["user.id"]
    assert {t["user_id"] for t in listed["traces"]} == {MASK}


# What a viewer receives from each endpoint is swept in test_masking.py.


def test_viewer_may_not_search_by_a_sensitive_field(secured: LiveServer) -> None:
    """Filtering by user id (or a sensitive attribute) would reveal it; viewers get 403."""
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        by_user = client.get(
            "/api/traces", params={"user_id": "alice"}, headers=bearer(VIEWER_TOKEN)
        )
        by_attribute = client.get(
            "/api/traces",
            params={"attr": "client.address=203.0.113.77"},
            headers=bearer(VIEWER_TOKEN),
        )
        user_page = client.get(
            f"/api/users/{SECRETS['user.id']}/journey", headers=bearer(VIEWER_TOKEN)
        )
        by_public = client.get(
            "/api/traces", params={"attr": "http.route=/checkout"}, headers=bearer(VIEWER_TOKEN)
        )
        admin_by_user = client.get(
            "/api/traces", params={"user_id": SECRETS["user.id"]}, headers=bearer(ADMIN_TOKEN)
        )
    assert [by_user.status_code, by_attribute.status_code, user_page.status_code] == [403] * 3
    assert by_public.status_code == 200
    assert len(by_public.json()["traces"]) == 2
    assert len(admin_by_user.json()["traces"]) == 2


def test_browser_logs_in_with_a_cookie(secured: LiveServer) -> None:
    """A UI page redirects to /login; the form sets an HttpOnly cookie the UI and API accept."""
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        page = client.get("/journeys?order=slowest")
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Fjourneys%3Forder%3Dslowest"
        assert client.get("/login").status_code == 200
        rejected = client.post("/login", data={"token": WRONG_TOKEN, "next": "/"})
        assert rejected.status_code == 401
        logged_in = client.post("/login", data={"token": VIEWER_TOKEN, "next": "/journeys"})
        assert logged_in.status_code == 303
        assert logged_in.headers["location"] == "/journeys"
        cookie = logged_in.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert client.get("/journeys").status_code == 200
        assert client.get("/api/stats").status_code == 200
        assert client.delete("/api/users/nobody").status_code == 403
        client.get("/logout")
        assert client.get("/api/stats").status_code == 401


def test_login_never_redirects_to_another_site(secured: LiveServer) -> None:
    """``next`` pointing off the server is replaced by the UI's home page."""
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            answer = client.post("/login", data={"token": ADMIN_TOKEN, "next": target})
            assert answer.headers["location"] == "/"


def test_probes_answer_without_a_token(secured: LiveServer) -> None:
    """Liveness and readiness probes need no token: orchestrators cannot send one."""
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200

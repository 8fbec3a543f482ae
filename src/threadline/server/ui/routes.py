"""The UI's routes: one HTML page shell per view, and the static files they load.

Each page is a small server-rendered shell naming what it shows (a trace id, a
session, a service) in ``data-`` attributes; its script module reads those and the
query string, asks the REST API under ``/api`` and builds the view with DOM calls.
Page state lives in the URL, so every view can be bookmarked and shared.

| path                         | view                                              |
|------------------------------|---------------------------------------------------|
| ``/``                        | trace search (filters in the query string)        |
| ``/trace/{trace_id}``        | waterfall, span details, critical path            |
|                              | (a unique prefix of 8+ characters redirects to the|
|                              | full id; an ambiguous one lists the candidates)   |
| ``/compare?a=&b=``           | two traces side by side                           |
| ``/journeys``                | list of journeys (sessions)                       |
| ``/journey/{session_id}``    | one session's steps on one timeline (prefixes too)|
| ``/user/{user_id}``          | one user's steps across sessions                  |
| ``/flows``                   | journey map and funnel                            |
| ``/map``                     | service map                                       |
| ``/service/{name}``          | rate, errors, latency, operations of one service  |
| ``/slos``                    | every SLO with its state, budget left, 1h burn    |
| ``/slos/{name}``             | one SLO: burndown, burn per window, rules, alerts,|
|                              | example traces, what burning requests share       |
| ``/alerts``                  | firing, pending, resolved alerts; receivers       |
| ``/drills``                  | scheduled probes: runs, last failure and its trace|
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from threadline.server.errors import Ambiguous, BadRequest, NotFound
from threadline.server.query import QueryService
from threadline.server.ui.api_docs import swagger_files
from threadline.server.ui.headers import SECURITY_HEADERS
from threadline.server.ui.pages import render_page
from threadline.server.ui.static_files import load_static_files

# Ids and names in a page title are cut here; the page itself shows them whole.
TITLE_CHARS: Final = 40


def build_ui_router(query: QueryService) -> APIRouter:
    """The UI's routes, to be mounted at ``/`` beside the API at ``/api``.

    ``query`` resolves ids given by a prefix; the pages themselves read the API.
    Routes that ask the store are plain functions, run on the thread pool.
    """
    router = APIRouter(include_in_schema=False)
    files = {**load_static_files(), **swagger_files()}

    @router.get("/")
    async def search() -> HTMLResponse:
        return _page("search.html", title="Search traces", nav="search")

    @router.get("/trace/{trace_id}")
    def trace(trace_id: str) -> Response:
        try:
            resolved = query.resolve_trace_id(trace_id)
        except BadRequest as exc:
            return _page(
                "error.html", status=400, title="Not a trace id", nav="", message=exc.message
            )
        except NotFound as exc:
            return _page(
                "error.html", status=404, title="No such trace", nav="", message=exc.message
            )
        except Ambiguous as exc:
            return _candidates(exc, "/trace/", "trace")
        if resolved != trace_id:
            return _redirect(f"/trace/{resolved}")
        return _page("trace.html", title=f"Trace {resolved[:7]}", nav="", trace_id=resolved)

    @router.get("/compare")
    async def compare() -> HTMLResponse:
        return _page("compare.html", title="Compare traces", nav="")

    @router.get("/journeys")
    async def journeys() -> HTMLResponse:
        return _page("journeys.html", title="Journeys", nav="journeys")

    # Session and user ids are opaque and may contain "/", hence ":path".
    @router.get("/journey/{session_id:path}")
    def journey(session_id: str) -> Response:
        try:
            resolved = query.resolve_session_id(session_id)
        except Ambiguous as exc:
            return _candidates(exc, "/journey/", "session")
        except (BadRequest, NotFound):
            resolved = session_id  # the page says what is wrong, as it does for any id
        if resolved != session_id:
            return _redirect(f"/journey/{quote(resolved, safe='')}")
        return _page(
            "journey.html",
            title=f"Journey {_short(session_id)}",
            nav="journeys",
            session_id=session_id,
            user_id="",
        )

    @router.get("/user/{user_id:path}")
    async def user(user_id: str) -> HTMLResponse:
        return _page(
            "journey.html",
            title=f"User {_short(user_id)}",
            nav="journeys",
            session_id="",
            user_id=user_id,
        )

    @router.get("/flows")
    async def journey_map() -> HTMLResponse:
        return _page("flows.html", title="Journey map", nav="flows")

    @router.get("/map")
    async def service_map() -> HTMLResponse:
        return _page("map.html", title="Service map", nav="map")

    @router.get("/service/{name:path}")
    async def service(name: str) -> HTMLResponse:
        return _page("service.html", title=_short(name), nav="map", service=name)

    @router.get("/slos")
    async def slo_list() -> HTMLResponse:
        return _page("slos.html", title="SLOs", nav="slos")

    # ":path": a name from a hand-typed or hostile URL may hold "/"; the page says
    # there is no such SLO rather than the server answering a bare 404.
    @router.get("/slos/{name:path}")
    async def slo(name: str) -> Response:
        if not name:
            return _redirect("/slos")
        # The page says when no SLO has this name, as it does for any id.
        return _page("slo.html", title=f"SLO {_short(name)}", nav="slos", slo=name)

    @router.get("/alerts")
    async def alerts() -> HTMLResponse:
        return _page("alerts.html", title="Alerts", nav="alerts")

    @router.get("/drills")
    async def drills() -> HTMLResponse:
        return _page("drills.html", title="Drills", nav="drills")

    @router.get("/static/{name}")
    async def static(name: str, request: Request) -> Response:
        file = files.get(name)
        if file is None:
            return Response(f"no UI file {name!r}\n", status_code=404, media_type="text/plain")
        headers = {**SECURITY_HEADERS, "ETag": file.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == file.etag:
            return Response(status_code=304, headers=headers)
        return Response(file.body, media_type=file.media_type, headers=headers)

    return router


def _page(template: str, *, status: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(
        render_page(template, **context), status_code=status, headers=dict(SECURITY_HEADERS)
    )


def _redirect(path: str) -> Response:
    # 302: the prefix names this id today; a later trace could make it ambiguous.
    return RedirectResponse(path, status_code=302, headers=dict(SECURITY_HEADERS))


def _candidates(exc: Ambiguous, base: str, what: str) -> HTMLResponse:
    """A 409 page listing the ids an ambiguous prefix matches, each a link."""
    links = [(candidate, base + quote(candidate, safe="")) for candidate in exc.candidates]
    return _page(
        "candidates.html",
        status=409,
        title=f"Which {what}?",
        nav="",
        message=exc.message,
        links=links,
        more=exc.more,
    )


def _short(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS] + "…"

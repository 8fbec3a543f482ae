"""``/api/docs``: the API's interactive reference, served entirely from this package.

FastAPI's default docs page loads Swagger UI from a CDN, so it breaks offline and
behind an egress filter, and it would need the UI's Content-Security-Policy relaxed
for a third-party host. The Swagger UI build comes instead from the
``swagger-ui-bundle-v2`` package (Apache-2.0; its licence ships with it), its two
files are served under ``/static/`` beside the UI's own, and the page starts it with
``static/api_docs.js`` under the same policy as every UI page. Swagger UI draws its
icons from ``data:`` URIs in its style sheet, so this page alone also allows
``data:`` images.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from threadline.server.ui.headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from threadline.server.ui.static_files import MEDIA_TYPES, StaticFile

# The parts of the Swagger UI build the page loads; the rest of the package is unused.
SWAGGER_FILES: Final = ("swagger-ui-bundle.js", "swagger-ui.css")

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/swagger-ui.css">
<script src="/static/swagger-ui-bundle.js" defer></script>
<script src="/static/api_docs.js" defer></script>
</head>
<body><div id="swagger-ui" data-openapi-url="{openapi_url}"></div></body>
</html>
"""
_DOCS_POLICY: Final = CONTENT_SECURITY_POLICY.replace("img-src 'self'", "img-src 'self' data:")


def swagger_files() -> dict[str, StaticFile]:
    """The Swagger UI files the docs page loads, by the name ``/static/`` serves them under."""
    files: dict[str, StaticFile] = {}
    for name in SWAGGER_FILES:
        body = (swagger_ui_path / name).read_bytes()
        suffix = "." + name.rsplit(".", 1)[-1]
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        files[name] = StaticFile(body=body, media_type=MEDIA_TYPES[suffix], etag=etag)
    return files


def build_api_docs_router(docs_url: str, openapi_url: str, title: str) -> APIRouter:
    """The route serving the docs page at ``docs_url`` for the schema at ``openapi_url``."""
    router = APIRouter(include_in_schema=False)
    page = _PAGE.format(title=escape(title), openapi_url=escape(openapi_url))
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": _DOCS_POLICY}

    @router.get(docs_url)
    async def api_docs() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    return router

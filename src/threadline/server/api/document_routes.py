"""``GET`` and ``PUT`` of a document people edit through the API: the sampling rules,
SLOs, funnels and probes (each a ``kept_documents.KeptDocument`` of the store).

- ``GET``: the document with a strong ``ETag``; a request whose ``If-None-Match``
  names it gets ``304 Not Modified`` and no body, so a fleet polling an unchanged
  document costs almost nothing.
- ``PUT``: the body (at most ``max_bytes``, else 413) is validated whole before
  anything is saved: a bad one answers 400 with ``{"error": "<field>: <problem>",
  "field": "<field>"}``. With ``If-Match``, a document changed since the client read
  it answers 412, so two editors cannot silently overwrite each other. A store that
  cannot save answers 503 with ``Retry-After``, and the old document stays in force.

Who may ``PUT`` is the auth layer's business (admin), not this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.invalid_document import InvalidDocument
from threadline.server.errors import PayloadTooLarge, Unavailable
from threadline.server.kept_documents import Versioned, tag_listed
from threadline.server.storage.base import StoreError

# A failed save is a store problem that may pass; the client can retry.
SAVE_FAILED_RETRY_AFTER_S: Final = 5

T = TypeVar("T")


class EditableDocument(Protocol[T]):
    """What the routes need of a kept document."""

    def get(self) -> Versioned[T]: ...

    def put(self, value: T, *, if_match: str | None = None) -> Versioned[T] | None: ...


# The document's JSON data as the request's client may see it (a viewer's masked copy).
Render = Callable[[T, Request], Any]


@dataclass(frozen=True, slots=True)
class DocumentRoutes(Generic[T]):
    """One kind of document's routes and what they say.

    ``parse`` validates a body whole, raising ``invalid`` (the document's own
    ``InvalidDocument``); ``called`` names the document in the size message ("an
    SLO document"), ``contents`` its contents in the others ("the SLOs").
    """

    path: str
    parse: Callable[[bytes], T]
    invalid: type[InvalidDocument]
    render: Render[T]
    max_bytes: int
    called: str
    contents: str
    get_summary: str
    put_summary: str

    def add_to(self, router: APIRouter, document: EditableDocument[T]) -> None:
        """Add ``GET`` and ``PUT`` of ``document`` at ``path`` to ``router``."""

        def answer(current: Versioned[T], request: Request) -> JSONResponse:
            return JSONResponse(self.render(current.value, request), headers={"ETag": current.etag})

        @router.get(self.path, summary=self.get_summary)
        def get_document(request: Request) -> Response:
            current = document.get()
            if tag_listed(request.headers.get("if-none-match"), current.etag):
                return Response(status_code=304, headers={"ETag": current.etag})
            return answer(current, request)

        @router.put(self.path, summary=self.put_summary)
        async def put_document(request: Request) -> Response:
            body = await request.body()
            if len(body) > self.max_bytes:
                raise PayloadTooLarge(f"{self.called} may be at most {self.max_bytes} bytes")
            try:
                parsed = self.parse(body)
            except self.invalid as exc:
                return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
            try:
                saved = await run_in_threadpool(
                    document.put, parsed, if_match=request.headers.get("if-match")
                )
            except StoreError as exc:
                raise Unavailable(
                    f"{self.contents} could not be saved ({exc})",
                    retry_after_s=SAVE_FAILED_RETRY_AFTER_S,
                ) from exc
            if saved is None:
                return JSONResponse(
                    {"error": f"{self.contents} changed since they were read; GET them again"},
                    status_code=412,
                )
            return answer(saved, request)

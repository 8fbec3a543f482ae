"""``DELETE /api/users/{user_id}``: erase every span of one user's journeys (admin only).

The right to erasure, as one call: the server works out every form the id may be
stored in (see ``threadline.server.erasure_forms``), the store deletes every trace
that carries one of them, or one of the user's session ids, and rewrites its files so
nothing of those spans is left on them (see ``Store.erase_user``). The answer lists
each form searched and how many spans carried it. The log records that an erasure
happened and its size, not whose it was: the log should not keep what was just erased.
"""

from __future__ import annotations

import logging
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.server.auth import require_admin
from threadline.server.erasure_forms import ErasureKeys, IdForm, forms_of
from threadline.server.errors import InvalidParameter
from threadline.server.storage.base import Store

logger = logging.getLogger(__name__)

# User ids are opaque, but no real one (raw or pseudonymised) is this long.
MAX_USER_ID_CHARS: Final = 1024
_TRUE: Final = frozenset({"1", "true", "yes"})
_FALSE: Final = frozenset({"", "0", "false", "no"})


def build_erase_router(store: Store, keys: ErasureKeys) -> APIRouter:
    """The erasure endpoint, to be mounted under ``/api``."""
    router = APIRouter(dependencies=[Depends(require_admin)])

    # ":path" because user ids may contain "/".
    @router.delete(
        "/users/{user_id:path}",
        summary="Erase every span of a user's journeys (all traces of their sessions)",
    )
    async def erase_user(
        user_id: str,
        as_given: Annotated[
            str | None,
            Query(description="true: search only the id as given, not its pseudonyms and hashes."),
        ] = None,
    ) -> JSONResponse:
        if not user_id or len(user_id) > MAX_USER_ID_CHARS:
            raise InvalidParameter(
                "user_id", f"must be 1 to {MAX_USER_ID_CHARS} characters, got {len(user_id)}"
            )
        flag = (as_given or "").strip().lower()
        if flag not in _TRUE | _FALSE:
            raise InvalidParameter("as_given", f"must be true or false, got {as_given!r}")
        forms = [IdForm(user_id, "as given")] if flag in _TRUE else forms_of(user_id, keys)
        erasure = await run_in_threadpool(store.erase_user, [form.value for form in forms])
        logger.info(
            "erasure request deleted %d spans of one user's journeys (%d forms of the id "
            "searched) and rewrote the store",
            erasure.erased_spans,
            len(forms),
        )
        carried = dict(erasure.spans_per_form)
        return JSONResponse(
            {
                "user_id": user_id,
                "erased_spans": erasure.erased_spans,
                "searched": [
                    {"form": form.value, "label": form.label, "spans": carried.get(form.value, 0)}
                    for form in forms
                ],
            }
        )

    return router

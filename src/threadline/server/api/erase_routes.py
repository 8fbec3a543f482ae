"""``DELETE /api/users/{user_id}``: erase every span of one user's journeys (admin only).

The right to erasure, as one call: the store deletes every trace that carries the
user id or one of the user's session ids (see ``Store.erase_user``), and the answer
says how many spans went. The log records that an erasure happened and its size,
not whose it was: the log should not keep what was just erased.
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.server.auth import require_admin
from threadline.server.errors import InvalidParameter
from threadline.server.storage.base import Store

logger = logging.getLogger(__name__)

# User ids are opaque, but no real one (raw or pseudonymised) is this long.
MAX_USER_ID_CHARS: Final = 1024


def build_erase_router(store: Store) -> APIRouter:
    """The erasure endpoint, to be mounted under ``/api``."""
    router = APIRouter(dependencies=[Depends(require_admin)])

    # ":path" because user ids may contain "/".
    @router.delete(
        "/users/{user_id:path}",
        summary="Erase every span of a user's journeys (all traces of their sessions)",
    )
    async def erase_user(user_id: str) -> JSONResponse:
        if not user_id or len(user_id) > MAX_USER_ID_CHARS:
            raise InvalidParameter(
                "user_id", f"must be 1 to {MAX_USER_ID_CHARS} characters, got {len(user_id)}"
            )
        erased = await run_in_threadpool(store.erase_user, user_id)
        logger.info("erasure request deleted %d spans of one user's journeys", erased)
        return JSONResponse({"user_id": user_id, "erased_spans": erased})

    return router

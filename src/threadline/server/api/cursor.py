"""Page cursors of trace searches as opaque URL-safe tokens, and back.

A cursor holds the order of the search and its last trace's sort key and id
(``model.TraceCursor``). Clients pass it back unchanged as ``cursor=``; it is
base64url of compact JSON, so it survives any URL or shell, and it is checked on
the way in like any other parameter (a tampered token is a 400, never a query).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Final, get_args

from threadline.server.analysis.durations import MAX_NS
from threadline.server.errors import InvalidParameter
from threadline.server.model import TraceCursor, TraceOrder

# A cursor token is short (~90 characters); anything much longer is not one of ours.
MAX_CURSOR_CHARS: Final = 256
_ORDERS: Final[tuple[str, ...]] = get_args(TraceOrder)
_TRACE_ID: Final = re.compile(r"[0-9a-f]{32}")


def encode(cursor: TraceCursor) -> str:
    document = json.dumps([cursor.order, cursor.key, cursor.trace_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode(token: str, *, order: TraceOrder) -> TraceCursor:
    """The cursor in ``token``; ``InvalidParameter`` unless it is one of a search in ``order``."""
    if len(token) > MAX_CURSOR_CHARS:
        raise InvalidParameter("cursor", "is not a cursor returned by this API (too long)")
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeEncodeError, binascii.Error):
        raise InvalidParameter("cursor", "is not a cursor returned by this API") from None
    if (
        not isinstance(document, list)
        or len(document) != 3
        or document[0] not in _ORDERS
        or not isinstance(document[1], int)
        or isinstance(document[1], bool)
        or not 0 <= document[1] <= MAX_NS
        or not isinstance(document[2], str)
        or not _TRACE_ID.fullmatch(document[2])
    ):
        raise InvalidParameter("cursor", "is not a cursor returned by this API")
    if document[0] != order:
        raise InvalidParameter(
            "cursor", f"belongs to a search in order {document[0]!r}, not {order!r}"
        )
    return TraceCursor(order=document[0], key=document[1], trace_id=document[2])

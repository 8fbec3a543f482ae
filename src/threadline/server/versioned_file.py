"""A small JSON document kept in a file, served with an ETag and replaced atomically.

What ``/api/sampling`` and ``/api/slos`` both need: a few kilobytes that change by
hand, kept in a file beside the DuckDB file (readable and editable with any tool,
surviving the store being replaced) rather than in the span store. ``put`` writes a
temporary file, flushes it to disk and renames it over the old one, so a crash
leaves either the old document or the new one, never half a file. Its ``If-Match``
is checked under the same lock as the write: two editors holding the same ETag
cannot both replace the document.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A document with the ETag that identifies its content."""

    value: T
    etag: str


class VersionedFile(Generic[T]):
    """The current document, read by any thread, replaced atomically by ``put``.

    ``encode`` gives the JSON data saved for a document, ``etag`` its strong validator.
    """

    def __init__(
        self,
        path: Path,
        initial: T,
        *,
        encode: Callable[[T], Any],
        etag: Callable[[T], str],
    ) -> None:
        self._path = path
        self._encode = encode
        self._etag = etag
        self._lock = threading.Lock()
        self._current = Versioned(initial, etag(initial))

    @property
    def path(self) -> Path:
        return self._path

    def get(self) -> Versioned[T]:
        return self._current

    def put(self, value: T, *, if_match: str | None = None) -> Versioned[T] | None:
        """Save ``value`` durably, then serve it; an ``OSError`` leaves the old document.

        None, and nothing saved, when ``if_match`` (an ``If-Match`` value) does not name
        the document in force.
        """
        text = json.dumps(self._encode(value), indent=2, sort_keys=True) + "\n"
        with self._lock:
            if if_match is not None and not tag_listed(if_match, self._current.etag):
                return None
            temporary = self._path.with_name(self._path.name + ".tmp")
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._path)
            self._current = Versioned(value, self._etag(value))
            return self._current


def tag_listed(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` / ``If-Match`` value names ``etag`` (or is ``*``)."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags

"""The documents people edit through the API, kept in the store: sampling rules,
SLOs, funnels and probes.

Every server process on one database serves the same documents, so none lives in
one process's files or memory: each is a row of the store (``Store.document``),
its ETag the content ETag of its canonical JSON (``etags``), the same as when these
were files, so clients holding an ETag keep it across the move.

- **Reading.** ``get`` serves the copy in memory and re-reads the store when that
  copy is older than ``REFRESH_S``. A process learns of another's ``PUT`` within
  that interval; re-reading on every call instead would put a store query on paths
  that ask many times a second (the tail sampler asks per trace, the scheduler per
  tick), for documents people change a few times a day. A failed or undecodable
  re-read keeps the copy in hand and is logged.
- **Writing.** ``put`` reads the store afresh, checks ``If-Match`` against what it
  finds (never against a copy another process may have replaced) and saves with
  the store's compare-and-set, so a document changed between the read and the save
  is refused too (None: the API answers 412).
- **Until the first save** the store holds nothing and ``get`` serves ``default``
  (what ``threadline.toml`` defines, or the built-in default), as the files did
  until their first ``PUT``. ``open_document`` first imports the file an older
  release kept beside the DuckDB file, once: when the store holds no document of
  that name and the file exists (a bad file stops the server at start, naming the
  field, as before). The file is left as it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from threadline.etags import canonical_json, content_etag
from threadline.server.storage.base import NO_DOCUMENT, StaleDocument, Store, StoreError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds a process serves its copy before asking the store again: how long another
# process's PUT may go unseen here.
REFRESH_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A document with the ETag that identifies its content."""

    value: T
    etag: str


class KeptDocument(Generic[T]):
    """One named document of the store, read by any thread, replaced by ``put``.

    ``encode`` gives a document's JSON data, ``decode`` parses the saved text (raising
    the document's own ``ValueError`` naming the bad field); ``default`` is called the
    first time the store is found to hold nothing.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        default: Callable[[], T],
        encode: Callable[[T], Any],
        decode: Callable[[str], T],
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._name = name
        self._make_default = default
        self._default: Versioned[T] | None = None
        self._encode = encode
        self._decode = decode
        self._refresh_s = refresh_s
        self._clock = clock
        # Held by a save and by a re-read, so a re-read begun before a save cannot put
        # the older document back after it.
        self._lock = threading.Lock()
        self._stored: str | None = None  # the stored ETag of the copy in hand
        # Read now, so a stored document that cannot be decoded stops the server at start.
        self._current, self._stored = self._read(None)
        self._checked = clock()

    @property
    def name(self) -> str:
        return self._name

    def get(self) -> Versioned[T]:
        """The document in force, as the store held it at most ``refresh_s`` ago."""
        if self._clock() - self._checked >= self._refresh_s and self._lock.acquire(blocking=False):
            # One thread re-reads; the others (and a save's) serve the copy in hand meanwhile.
            try:
                self._refresh()
            finally:
                self._lock.release()
        return self._current

    def put(self, value: T, *, if_match: str | None = None) -> Versioned[T] | None:
        """Save ``value`` durably, then serve it; a ``StoreError`` leaves the old document.

        None, and nothing saved, when ``if_match`` (an ``If-Match`` value) does not name
        the document in force in the store.
        """
        body = canonical_json(self._encode(value))
        with self._lock:
            current, stored = self._read(self._current)
            self._current, self._stored = current, stored
            if if_match is not None and not tag_listed(if_match, current.etag):
                return None
            expected = None if if_match is None else (stored or NO_DOCUMENT)
            try:
                etag = self._store.save_document(self._name, body, if_match=expected)
            except StaleDocument:
                return None
            self._current, self._stored = Versioned(value, etag), etag
            self._checked = self._clock()
            return self._current

    def _read(self, in_hand: Versioned[T] | None) -> tuple[Versioned[T], str | None]:
        """The document the store holds (or the default) and its stored ETag (or None);
        ``in_hand`` is reused, not decoded again, when the store still holds it."""
        stored = self._store.document(self._name)
        if stored is None:
            if self._default is None:
                default = self._make_default()
                self._default = Versioned(default, content_etag(self._encode(default)))
            return self._default, None
        if in_hand is not None and stored.etag == self._stored:
            return in_hand, stored.etag
        return Versioned(self._decode(stored.body), stored.etag), stored.etag

    def _refresh(self) -> None:
        try:
            self._current, self._stored = self._read(self._current)
        except (StoreError, ValueError) as exc:
            logger.warning("%s: serving the copy in hand; the store's: %s", self._name, exc)
        self._checked = self._clock()


def open_document(
    store: Store,
    name: str,
    *,
    imported_from: Path,
    load_file: Callable[[Path], T],
    default: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[str], T],
) -> KeptDocument[T]:
    """The document ``name`` of ``store``, after importing ``imported_from`` once if the
    store holds none yet; ``default`` is served until the first save."""
    if store.document(name) is None and imported_from.exists():
        value = load_file(imported_from)
        try:
            store.save_document(name, canonical_json(encode(value)), if_match=NO_DOCUMENT)
            logger.info("%s imported into the store from %s", name, imported_from)
        except StaleDocument:
            pass  # another server process on this database imported it first
    return KeptDocument(store, name, default=default, encode=encode, decode=decode)


def tag_listed(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` / ``If-Match`` value names ``etag`` (or is ``*``)."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags

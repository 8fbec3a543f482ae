"""The SLOs the server evaluates and serves at ``/api/slos``, kept in the store.

The SLOs are the store's ``slos`` document (``kept_documents``: the same for every
server process on the database, a strong ETag, ``If-Match`` checked by the store).
A ``<db>.slos.json`` an older release kept beside the DuckDB file (or the file
``slos_file`` names) is imported once, when the store holds no SLOs yet. Until the
first ``PUT`` they come from the ``[[slo]]`` tables of ``threadline.toml``. A file
to import that cannot be read stops the server at start, naming the bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from threadline.server.kept_documents import KeptDocument, open_document
from threadline.server.storage.base import Store
from threadline.slos import SloDocument, configured_slos, load_file, parse_json

SLOS_FILE_SUFFIX: Final = ".slos.json"
DOCUMENT: Final = "slos"

KeptSlos = KeptDocument[SloDocument]


def open_slos(store: Store, imported_from: Path) -> KeptSlos:
    """The SLOs in ``store``, else ``imported_from``'s (imported), else
    ``threadline.toml``'s (possibly none)."""
    return open_document(
        store,
        DOCUMENT,
        imported_from=imported_from,
        load_file=load_file,
        default=configured_slos,
        encode=SloDocument.to_json,
        decode=parse_json,
    )


def default_slos_path(db: Path, slos_file: str) -> Path:
    """The file to import: ``slos_file`` if set, else ``<db>.slos.json``."""
    return Path(slos_file) if slos_file else db.with_name(db.name + SLOS_FILE_SUFFIX)

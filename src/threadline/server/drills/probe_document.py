"""The scheduled probes the server runs and serves at ``/api/probes``, kept in the store.

Like the SLOs: the store's ``probes`` document (``kept_documents``: the same for
every server process on the database, a strong ETag, ``If-Match`` checked by the
store). A ``<db>.probes.json`` an older release kept beside the DuckDB file (or the
file ``probes_file`` names) is imported once, when the store holds no probes yet.
Until the first ``PUT`` the probes come from the ``[[probe]]`` tables of
``threadline.toml``. A file to import that cannot be read stops the server at
start, naming the bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from threadline.probing.definitions import (
    ProbeDocument,
    configured_probes,
    load_file,
    parse_json,
)
from threadline.server.kept_documents import KeptDocument, open_document
from threadline.server.storage.base import Store

PROBES_FILE_SUFFIX: Final = ".probes.json"
DOCUMENT: Final = "probes"

KeptProbes = KeptDocument[ProbeDocument]


def open_probes(store: Store, imported_from: Path) -> KeptProbes:
    """The probes in ``store``, else ``imported_from``'s (imported), else
    ``threadline.toml``'s (possibly none)."""
    return open_document(
        store,
        DOCUMENT,
        imported_from=imported_from,
        load_file=load_file,
        default=configured_probes,
        encode=ProbeDocument.to_json,
        decode=parse_json,
    )


def default_probes_path(db: Path, probes_file: str) -> Path:
    """The file to import: ``probes_file`` if set, else ``<db>.probes.json``."""
    return Path(probes_file) if probes_file else db.with_name(db.name + PROBES_FILE_SUFFIX)

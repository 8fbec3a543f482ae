"""Where the server keeps the scheduled probes it runs and serves at ``/api/probes``.

Like the SLOs: ``<db>.probes.json`` beside the DuckDB file (``probes_file`` names
another), saved and served by ``versioned_file`` (atomic replacement, strong ETag,
``If-Match`` under the write lock). Until the first ``PUT`` the probes come from the
``[[probe]]`` tables of ``threadline.toml``. A file that exists but cannot be read
stops the server at start, naming the bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from threadline.probing.definitions import (
    ProbeDocument,
    configured_probes,
    load_file,
)
from threadline.server.versioned_file import VersionedFile

PROBES_FILE_SUFFIX: Final = ".probes.json"

ProbeFile = VersionedFile[ProbeDocument]


def open_probes(path: Path) -> ProbeFile:
    """The probes saved at ``path``, else ``threadline.toml``'s (possibly none)."""
    initial = load_file(path) if path.exists() else configured_probes()
    return VersionedFile(path, initial, encode=ProbeDocument.to_json, etag=ProbeDocument.etag)


def default_probes_path(db: Path, probes_file: str) -> Path:
    """``probes_file`` if set, else ``<db>.probes.json`` beside the DuckDB file."""
    return Path(probes_file) if probes_file else db.with_name(db.name + PROBES_FILE_SUFFIX)

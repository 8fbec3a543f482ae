"""Where the server keeps the SLOs it evaluates and serves at ``/api/slos``.

The SLOs live in ``<db>.slos.json`` beside the DuckDB file (``slos_file`` names
another), saved and served by ``versioned_file`` like the sampling rules: atomic
replacement, a strong ETag, ``If-Match`` checked under the write lock. Until the
first ``PUT`` they come from the ``[[slo]]`` tables of ``threadline.toml``. A file
that exists but cannot be read stops the server at start, naming the bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from threadline.server.versioned_file import VersionedFile
from threadline.slos import SloDocument, configured_slos, load_file

SLOS_FILE_SUFFIX: Final = ".slos.json"

SloFile = VersionedFile[SloDocument]


def open_slos(path: Path) -> SloFile:
    """The SLOs saved at ``path``, else ``threadline.toml``'s (possibly none)."""
    initial = load_file(path) if path.exists() else configured_slos()
    return VersionedFile(path, initial, encode=SloDocument.to_json, etag=SloDocument.etag)


def default_slos_path(db: Path, slos_file: str) -> Path:
    """``slos_file`` if set, else ``<db>.slos.json`` beside the DuckDB file."""
    return Path(slos_file) if slos_file else db.with_name(db.name + SLOS_FILE_SUFFIX)

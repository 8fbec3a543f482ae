"""The UI's static files (scripts, style sheet, icon), read once from the package.

Files are served from a fixed table built at start-up, never by joining a request
path onto a directory, so no request can reach a file outside ``static/``. Each
carries an ETag: browsers revalidate (``no-cache``) and get 304 while it is unchanged,
so a new release is picked up without stale scripts and without re-downloading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Final

MEDIA_TYPES: Final[dict[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


def load_static_files() -> dict[str, StaticFile]:
    """Every file of ``static/`` with a known media type, by file name."""
    root = resources.files("threadline.server.ui") / "static"
    files: dict[str, StaticFile] = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in MEDIA_TYPES:
            continue
        body = entry.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:16]
        files[entry.name] = StaticFile(
            body=body, media_type=MEDIA_TYPES[suffix], etag=f'"{digest}"'
        )
    return files

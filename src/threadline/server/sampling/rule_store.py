"""Where the server keeps the sampling rules it serves at ``/api/sampling``.

The rules are a few kilobytes that change by hand, so they live in a small JSON file
beside the DuckDB file (``<db>.sampling.json``) rather than in the span store: the
file is readable and editable with any tool, and survives the store being replaced.
A ``PUT`` writes a temporary file, flushes it to disk and renames it over the old
one, so a crash leaves either the old rules or the new ones, never half a file. Its
``If-Match`` is checked under the same lock as the write: two editors holding the same
ETag cannot both replace the rules.

Until the first ``PUT`` the rules come from the ``[sampling]`` table of
``threadline.toml`` (or the defaults: sample everything). A rules file that exists
but cannot be read stops the server at start with a message naming the bad field,
rather than silently serving defaults.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from threadline.sampling_rules import SamplingRules, configured_rules, load_file

RULES_FILE_SUFFIX = ".sampling.json"


@dataclass(frozen=True, slots=True)
class VersionedRules:
    """Rules with the ETag that identifies their content."""

    rules: SamplingRules
    etag: str


class RuleStore:
    """The current rules, read by any thread, replaced atomically by ``put``."""

    def __init__(self, path: Path, initial: SamplingRules) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._current = VersionedRules(initial, initial.etag())

    @classmethod
    def open(cls, path: Path) -> RuleStore:
        """The rules saved at ``path``, else ``threadline.toml``'s, else the defaults."""
        if path.exists():
            return cls(path, load_file(path))
        return cls(path, configured_rules("") or SamplingRules())

    @property
    def path(self) -> Path:
        return self._path

    def get(self) -> VersionedRules:
        return self._current

    def put(self, rules: SamplingRules, *, if_match: str | None = None) -> VersionedRules | None:
        """Save ``rules`` durably, then serve them; an ``OSError`` leaves the old rules.

        None, and nothing saved, when ``if_match`` (an ``If-Match`` value) does not name
        the rules in force.
        """
        text = json.dumps(rules.to_json(), indent=2, sort_keys=True) + "\n"
        with self._lock:
            if if_match is not None and not tag_listed(if_match, self._current.etag):
                return None
            temporary = self._path.with_name(self._path.name + ".tmp")
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._path)
            self._current = VersionedRules(rules, rules.etag())
            return self._current


def tag_listed(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` / ``If-Match`` value names ``etag`` (or is ``*``)."""
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def default_rules_path(db: Path, rules_file: str) -> Path:
    """``rules_file`` if set, else ``<db>.sampling.json`` beside the DuckDB file."""
    return Path(rules_file) if rules_file else db.with_name(db.name + RULES_FILE_SUFFIX)

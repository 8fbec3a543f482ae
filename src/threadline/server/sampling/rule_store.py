"""Where the server keeps the sampling rules it serves at ``/api/sampling``.

The rules live in ``<db>.sampling.json`` beside the DuckDB file, saved and served by
``versioned_file`` (atomic replacement, ETag, ``If-Match`` under the write lock).

Until the first ``PUT`` the rules come from the ``[sampling]`` table of
``threadline.toml`` (or the defaults: sample everything). A rules file that exists
but cannot be read stops the server at start with a message naming the bad field,
rather than silently serving defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from threadline.sampling_rules import SamplingRules, configured_rules, load_file
from threadline.server.versioned_file import VersionedFile, tag_listed

RULES_FILE_SUFFIX = ".sampling.json"

__all__ = ["RuleStore", "VersionedRules", "default_rules_path", "tag_listed"]


@dataclass(frozen=True, slots=True)
class VersionedRules:
    """Rules with the ETag that identifies their content."""

    rules: SamplingRules
    etag: str


class RuleStore:
    """The current rules, read by any thread, replaced atomically by ``put``."""

    def __init__(self, path: Path, initial: SamplingRules) -> None:
        self._file = VersionedFile(
            path, initial, encode=SamplingRules.to_json, etag=SamplingRules.etag
        )

    @classmethod
    def open(cls, path: Path) -> RuleStore:
        """The rules saved at ``path``, else ``threadline.toml``'s, else the defaults."""
        if path.exists():
            return cls(path, load_file(path))
        return cls(path, configured_rules("") or SamplingRules())

    @property
    def path(self) -> Path:
        return self._file.path

    def get(self) -> VersionedRules:
        current = self._file.get()
        return VersionedRules(current.value, current.etag)

    def put(self, rules: SamplingRules, *, if_match: str | None = None) -> VersionedRules | None:
        """Save ``rules`` durably, then serve them; an ``OSError`` leaves the old rules.

        None, and nothing saved, when ``if_match`` (an ``If-Match`` value) does not name
        the rules in force.
        """
        saved = self._file.put(rules, if_match=if_match)
        return None if saved is None else VersionedRules(saved.value, saved.etag)


def default_rules_path(db: Path, rules_file: str) -> Path:
    """``rules_file`` if set, else ``<db>.sampling.json`` beside the DuckDB file."""
    return Path(rules_file) if rules_file else db.with_name(db.name + RULES_FILE_SUFFIX)

"""The sampling rules the server serves at ``/api/sampling``, kept in the store.

The rules are the store's ``sampling`` document (``kept_documents``: the same for
every server process on the database, ETag, ``If-Match`` checked by the store). A
``<db>.sampling.json`` an older release kept beside the DuckDB file (or the file
``sampling_rules_file`` names) is imported once, when the store holds no rules yet.

Until the first ``PUT`` the rules come from the ``[sampling]`` table of
``threadline.toml`` (or the defaults: sample everything). A rules file to import
that cannot be read stops the server at start with a message naming the bad field,
rather than silently serving defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from threadline.sampling_rules import SamplingRules, configured_rules, load_file, parse_json
from threadline.server.kept_documents import KeptDocument, Versioned, open_document
from threadline.server.storage.base import Store

RULES_FILE_SUFFIX: Final = ".sampling.json"
DOCUMENT: Final = "sampling"

__all__ = ["RuleStore", "default_rules_path"]


class RuleStore:
    """The current rules, read by any thread, replaced by ``put``."""

    def __init__(self, document: KeptDocument[SamplingRules]) -> None:
        self._document = document

    @classmethod
    def open(cls, store: Store, imported_from: Path) -> RuleStore:
        """The rules in ``store``, else ``imported_from``'s (imported), else
        ``threadline.toml``'s, else the defaults."""
        return cls(
            open_document(
                store,
                DOCUMENT,
                imported_from=imported_from,
                load_file=load_file,
                default=lambda: configured_rules("") or SamplingRules(),
                encode=SamplingRules.to_json,
                decode=parse_json,
            )
        )

    def get(self) -> Versioned[SamplingRules]:
        return self._document.get()

    def put(
        self, rules: SamplingRules, *, if_match: str | None = None
    ) -> Versioned[SamplingRules] | None:
        """Save ``rules`` durably, then serve them; a ``StoreError`` leaves the old rules.

        None, and nothing saved, when ``if_match`` (an ``If-Match`` value) does not name
        the rules in force.
        """
        return self._document.put(rules, if_match=if_match)


def default_rules_path(db: Path, rules_file: str) -> Path:
    """The file to import: ``rules_file`` if set, else ``<db>.sampling.json``."""
    return Path(rules_file) if rules_file else db.with_name(db.name + RULES_FILE_SUFFIX)

"""Kept documents on a real store: imported once, seen by other processes, compared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.etags import content_etag
from threadline.server.kept_documents import KeptDocument, open_document
from threadline.server.storage.duckdb import DuckDBStore
from threadline.slos import SloDocument, SloError, load_file, parse, parse_json

SLO = {
    "name": "checkout-errors",
    "service": "shop",
    "objective": 0.99,
    "window": "30d",
    "indicator": "errors",
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    yield opened
    opened.close()


def _slos(*names: str) -> SloDocument:
    return parse({"slos": [{**SLO, "name": name} for name in names]})


def _kept(store: DuckDBStore, clock: Clock, default: SloDocument | None = None) -> KeptDocument:
    return KeptDocument(
        store,
        "slos",
        default=lambda: default or SloDocument(),
        encode=SloDocument.to_json,
        decode=parse_json,
        refresh_s=1.0,
        clock=clock,
    )


def _open(store: DuckDBStore, old_file: Path, default: SloDocument) -> KeptDocument:
    return open_document(
        store,
        "slos",
        imported_from=old_file,
        load_file=load_file,
        default=lambda: default,
        encode=SloDocument.to_json,
        decode=parse_json,
    )


def test_an_old_file_is_imported_once_and_left_in_place(store: DuckDBStore, tmp_path: Path) -> None:
    """The file beside the store becomes the stored document; a later edit of it is not
    read again, and the configured default gives way to it."""
    old_file = tmp_path / "spans.duckdb.slos.json"
    old_file.write_text(json.dumps(_slos("from-file").to_json()))
    imported = _open(store, old_file, default=_slos("from-toml")).get()
    assert [s.name for s in imported.value.slos] == ["from-file"]
    assert imported.etag == content_etag(_slos("from-file").to_json())
    old_file.write_text(json.dumps(_slos("edited-later").to_json()))
    again = _open(store, old_file, default=_slos("from-toml")).get()
    assert again == imported
    assert old_file.exists()


def test_a_bad_file_to_import_stops_the_start_naming_the_field(
    store: DuckDBStore, tmp_path: Path
) -> None:
    """Nothing is imported from a file that does not parse, and the error says why."""
    old_file = tmp_path / "spans.duckdb.slos.json"
    old_file.write_text(json.dumps({"slos": [{**SLO, "objective": 2}]}))
    with pytest.raises(SloError, match=r"slos\[0\]\.objective"):
        _open(store, old_file, default=SloDocument())
    assert store.document("slos") is None


def test_the_default_is_served_until_the_first_save(store: DuckDBStore) -> None:
    """Nothing stored: the configured document and its content ETag, not saved."""
    kept = _kept(store, Clock(), default=_slos("configured"))
    served = kept.get()
    assert [s.name for s in served.value.slos] == ["configured"]
    assert served.etag == content_etag(_slos("configured").to_json())
    assert store.document("slos") is None
    assert kept.put(_slos("saved"), if_match=served.etag) is not None
    assert [s.name for s in kept.get().value.slos] == ["saved"]


def test_another_process_sees_a_save_within_the_refresh_interval(store: DuckDBStore) -> None:
    """Two servers on one store: the second serves its copy until the interval passes,
    then the first one's save."""
    clock = Clock()
    first, second = _kept(store, clock), _kept(store, clock)
    saved = first.put(_slos("new"))
    assert saved is not None
    assert second.get().value == SloDocument()
    clock.now += 1.0
    assert second.get() == saved


def test_a_stale_if_match_is_refused_though_the_local_copy_matches_it(
    store: DuckDBStore,
) -> None:
    """The If-Match is checked against the store, not against this process's copy."""
    clock = Clock()
    first, second = _kept(store, clock), _kept(store, clock)
    held = second.get().etag
    assert first.put(_slos("first"), if_match=held) is not None
    assert second.get().etag == held  # its copy is not refreshed yet
    assert second.put(_slos("second"), if_match=held) is None
    assert [s.name for s in second.get().value.slos] == ["first"]

"""The ``Store`` contract for kept documents, on every backend: saved, compared, kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from threadline.etags import body_etag, content_etag
from threadline.server.storage.base import NO_DOCUMENT, StaleDocument, Store

StoreOpener = Callable[..., Store]

RULES = '{"rules":[{"rate":0.5,"service":"shop"}]}'
FEWER_RULES = '{"rules":[]}'


def test_a_document_not_saved_is_none(store: Store) -> None:
    """Nothing saved under a name reads as None, whatever else is saved."""
    store.save_document("slos", RULES, if_match=None)
    assert store.document("sampling") is None


def test_a_saved_document_reads_back_with_its_content_etag(store: Store) -> None:
    """The ETag is the body's, and equals the content ETag of the document it encodes."""
    etag = store.save_document("sampling", RULES, if_match=NO_DOCUMENT)
    assert etag == body_etag(RULES)
    assert etag == content_etag({"rules": [{"service": "shop", "rate": 0.5}]})
    saved = store.document("sampling")
    assert saved is not None
    assert (saved.body, saved.etag) == (RULES, etag)


def test_a_save_naming_the_stored_etag_replaces_the_document(store: Store) -> None:
    """If-Match of the version in force: the new body is served from then on."""
    first = store.save_document("sampling", RULES, if_match=None)
    second = store.save_document("sampling", FEWER_RULES, if_match=first)
    saved = store.document("sampling")
    assert saved is not None
    assert (saved.body, saved.etag) == (FEWER_RULES, second)


def test_a_stale_if_match_is_refused_and_saves_nothing(store: Store) -> None:
    """An editor holding an old ETag cannot overwrite a newer document."""
    first = store.save_document("sampling", RULES, if_match=None)
    store.save_document("sampling", FEWER_RULES, if_match=first)
    with pytest.raises(StaleDocument):
        store.save_document("sampling", '{"rules":[{"rate":0.1}]}', if_match=first)
    saved = store.document("sampling")
    assert saved is not None
    assert saved.body == FEWER_RULES


def test_no_document_if_match_saves_only_the_first_time(store: Store) -> None:
    """``NO_DOCUMENT`` is create-only: the second importer is refused."""
    store.save_document("probes", RULES, if_match=NO_DOCUMENT)
    with pytest.raises(StaleDocument):
        store.save_document("probes", FEWER_RULES, if_match=NO_DOCUMENT)
    with pytest.raises(StaleDocument):
        store.save_document("funnels", RULES, if_match=body_etag(RULES))
    assert store.document("funnels") is None


def test_an_unconditional_save_replaces_whatever_is_stored(store: Store) -> None:
    """``if_match=None`` saves over any version, many times over."""
    for body in (RULES, FEWER_RULES, RULES):
        store.save_document("slos", body, if_match=None)
    saved = store.document("slos")
    assert saved is not None
    assert saved.body == RULES


def test_documents_survive_reopening(open_store: StoreOpener) -> None:
    """A document saved before a restart reads back with the same ETag."""
    first = open_store()
    etag = first.save_document("slos", RULES, if_match=None)
    first.save_document("funnels", FEWER_RULES, if_match=None)
    first.close()
    again = open_store()
    slos, funnels = again.document("slos"), again.document("funnels")
    assert slos is not None
    assert (slos.body, slos.etag) == (RULES, etag)
    assert funnels is not None
    assert funnels.body == FEWER_RULES

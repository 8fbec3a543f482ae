"""Strong ETags of the JSON documents the server keeps (sampling rules, SLOs, funnels,
probes): the same content gives the same tag, whatever order its keys came in."""

from __future__ import annotations

import hashlib
import json


def canonical_json(document: object) -> str:
    """The one serialisation of a document: sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def content_etag(document: object) -> str:
    """A strong validator (RFC 9110 §8.8.3) of ``document``'s content."""
    return body_etag(canonical_json(document))


def body_etag(body: str) -> str:
    """The ETag of a document saved as ``body`` (its canonical JSON): what the store
    keeps beside it, equal to ``content_etag`` of the document it encodes."""
    return f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'

"""Redaction at ingest: the SDK's rules applied to spans from any OpenTelemetry SDK.

Threadline's SDK redacts before export, but the receiver also takes spans from SDKs
in other languages and from services without Threadline. The decoder calls
:meth:`IngestRedactor.span` once per span, on the decoded attribute dict, name, status
message and events JSON, before the batch is built; so the store, the API and every
index only ever see redacted values. The journey columns are read from the redacted
attributes: a ``user.id`` that is an e-mail address is stored as its keyed hash, and
the journey still groups.

A span Threadline's SDK already redacted passes through unchanged (masks and hashes
are not matched again), and the ``threadline.redacted`` list a span arrives with is
merged with the fields redacted here.
"""

from __future__ import annotations

import json
from typing import Final, NamedTuple

from threadline.redaction import REDACTED_FIELDS, Redactor, merge_redacted
from threadline.redaction.configured import redactor_from_settings
from threadline.server.batch import dumps
from threadline.settings import ServerSettings

_NO_EVENTS: Final = "[]"


class RedactedSpan(NamedTuple):
    """The parts of a span that redaction may have changed, ready for the batch."""

    name: str
    status_message: str
    attributes: dict[str, object]
    attributes_json: str
    events_json: str


class IngestRedactor:
    """Applies one :class:`~threadline.redaction.Redactor` to decoded spans."""

    __slots__ = ("_redactor",)

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def span(
        self,
        name: str,
        status_message: str,
        attributes: dict[str, object],
        events_json: str,
    ) -> RedactedSpan | None:
        """The redacted parts of one decoded span, or None when no rule matched."""
        redactor = self._redactor
        found: list[str] = []
        new_attributes = redactor.attributes(attributes, found)
        new_name = redactor.text(name)
        if new_name is not None:
            found.append("name")
        new_status = redactor.text(status_message) if status_message else None
        if new_status is not None:
            found.append("status.message")
        new_events = (
            self._events(events_json, found) if events_json and events_json != _NO_EVENTS else None
        )
        if not found:
            return None
        merged = dict(new_attributes if new_attributes is not None else attributes)
        merged[REDACTED_FIELDS] = list(merge_redacted(attributes.get(REDACTED_FIELDS), found))
        return RedactedSpan(
            name=name if new_name is None else new_name,
            status_message=status_message if new_status is None else new_status,
            attributes=merged,
            attributes_json=dumps(merged),
            events_json=events_json if new_events is None else new_events,
        )

    def _events(self, events_json: str, found: list[str]) -> str | None:
        # Events are few (exceptions, mostly), so reading back their JSON costs less than
        # threading redaction through the decoder's event loop.
        rows = json.loads(events_json)
        changed = False
        for row in rows:
            attributes = row.get("attributes")
            if not isinstance(attributes, dict):
                continue
            redacted = self._redactor.attributes(attributes, found, f"events.{row.get('name')}.")
            if redacted is not None:
                row["attributes"] = redacted
                changed = True
        return dumps(rows) if changed else None


def ingest_redactor(settings: ServerSettings) -> IngestRedactor | None:
    """The redactor ``settings`` ask for at ingest, or None when ``redaction`` is off.

    Raises :class:`~threadline.settings.ConfigError` naming a rule that does not parse.
    """
    redactor = redactor_from_settings(settings)
    return None if redactor is None else IngestRedactor(redactor)

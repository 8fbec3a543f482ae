"""Redaction at ingest: the SDK's rules applied to spans from any OpenTelemetry SDK.

Threadline's SDK redacts before export, but the receiver also takes spans from SDKs
in other languages and from services without Threadline. The decoder hands every part
of a span that can carry text to :class:`IngestRedactor` as it decodes it, *before*
the size limits cut anything (a value cut first could end in half an e-mail address
that no detector recognises any more): span, event and scope names, attribute keys and
values of the span, its events, its links and its resource, and the status message.
So the store, the API and every index only ever see redacted values. The journey
columns are read from the redacted attributes: a ``user.id`` that is an e-mail
address is stored as its keyed hash, and the journey still groups.

A span Threadline's SDK already redacted passes through unchanged (masks and hashes
are not matched again). A ``threadline.redacted`` list a span arrives with is
scanned like any other value, so it cannot smuggle a value in or exempt a field, and
is merged with the fields redacted here.
"""

from __future__ import annotations

from threadline.redaction import REDACTED_FIELDS, Redactor, merge_redacted
from threadline.redaction.configured import redactor_from_settings
from threadline.settings import ServerSettings


class IngestRedactor:
    """Applies one :class:`~threadline.redaction.Redactor` to the parts of decoded spans.

    Each method takes ``found``, the names of the fields redacted so far in one span
    (or one resource), and appends to it; the names are redacted forms, never values.
    """

    __slots__ = ("_redactor",)

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def text(self, text: str, field: str, found: list[str]) -> str:
        """``text`` (a span, event or scope name, a status message) redacted."""
        if not text:
            return text
        redacted = self._redactor.text(text)
        if redacted is None:
            return text
        found.append(field)
        return redacted

    def attributes(
        self, values: dict[str, object], found: list[str], prefix: str = ""
    ) -> dict[str, object]:
        """Decoded attributes redacted: ``values`` itself when clean, else a copy."""
        redacted = self._redactor.attributes(values, found, prefix)
        return values if redacted is None else redacted

    def listed(self, values: dict[str, object], found: list[str]) -> dict[str, object]:
        """A span's or resource's attributes redacted, with ``threadline.redacted`` listing
        ``found`` (fields redacted elsewhere in it) and what was redacted here.

        ``values`` belongs to the caller's decoder and may be changed in place.
        """
        values = self.attributes(values, found)
        if found:
            values[REDACTED_FIELDS] = list(merge_redacted(values.get(REDACTED_FIELDS), found))
        return values


def ingest_redactor(settings: ServerSettings) -> IngestRedactor | None:
    """The redactor ``settings`` ask for at ingest, or None when ``redaction`` is off.

    Raises :class:`~threadline.settings.ConfigError` naming a rule that does not parse.
    """
    redactor = redactor_from_settings(settings)
    return None if redactor is None else IngestRedactor(redactor)

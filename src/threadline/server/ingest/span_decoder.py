"""The OTLP trace decoder a server keeps: protobuf through remembered attributes.

``decode.decode`` reads every attribute of every span from the parsed message:
a ``KeyValue`` and an ``AnyValue`` wrapper, a ``WhichOneof``, a field read, a dict
entry, a redaction check and JSON encoding each time. That was most of the cost of
ingest (profiled on the benchmark's payloads: the attribute dict, ``any_value``, the
redaction loop and ``json`` took ~70% of decoding; ``ParseFromString`` itself ~3%).

Attributes repeat: a route, a method, a host, a port, an SDK version, and a session
or user id on every span of a journey. So a ``SpanDecoder`` parses requests with
the span attributes left encoded (``wire.RawAttributesRequest``) and remembers, for
each encoded ``KeyValue`` it has met, its JSON member (``"key":value``) and whether
redaction leaves it alone. A span whose attributes are all known and clean becomes
its JSON by one join; anything else (a value to redact, a repeated key, a limit
reached) takes the general path of ``decode``, unchanged, so the result is always
the one ``decode.decode`` gives for the same body. The tests hold the two equal.

Errors are the stock decoder's: a request this path refuses is decoded again by
``decode.decode``, which raises exactly what it always did (a malformed attribute,
found late here, is a parse error there; a bad span after it is not reported first).
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from threadline.conventions import JOURNEY_ID, SESSION_ID, USER_ID
from threadline.server.batch import COLUMNS, SpanBatch, dumps
from threadline.server.errors import BadRequest, ThreadlineError
from threadline.server.ingest.attributes import (
    any_value,
    bounded_attributes,
    journey_key,
    listed,
    resource_of,
)
from threadline.server.ingest.decode import (
    _KINDS,
    _NO_EVENTS,
    _NO_LINKS,
    _STATUSES,
    MAX_TIME_NS,
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    ZERO_SPAN_ID,
    ZERO_TRACE_ID,
    PayloadFormat,
    _events_json,
    _links_json,
    decode,
)
from threadline.server.ingest.limits import (
    DEFAULT_LIMITS,
    EVENTS_MARK,
    LINKS_MARK,
    NAME_MARK,
    STATUS_MESSAGE_MARK,
    IngestLimits,
    check_span_count,
    cut_text,
)
from threadline.server.ingest.redact import IngestRedactor
from threadline.server.ingest.wire import RawAttributesRequest

# Distinct attributes remembered; past it the memory starts over. 16k entries of at
# most ``MAX_REMEMBERED_BYTES`` bytes each (with their JSON and the tuple, < 1 KB)
# stay under ~16 MB per decoding process and hold the repeated attributes of a fleet.
MAX_REMEMBERED: Final = 16_384
# Longer encoded attributes (stack traces, SQL, payloads) rarely repeat exactly:
# they are read but not remembered.
MAX_REMEMBERED_BYTES: Final = 256

_JOURNEY_KEYS: Final = frozenset((SESSION_ID, USER_ID, JOURNEY_ID))
# How ``dumps`` (``ensure_ascii=False``) writes a string, key or value.
_text: Final = encode_basestring
_KIND_COUNT: Final = len(_KINDS)
_STATUS_COUNT: Final = len(_STATUSES)


class _Uncommon:
    """An attribute the general path must handle (redaction changes it).

    Not subscriptable, unlike an entry: reading a member of it raises ``TypeError``.
    """


_UNCOMMON: Final = _Uncommon()
# (key, JSON member, whether the key is a journey key, its journey column value)
_Entry = tuple[str, str, bool, object]


class SpanDecoder:
    """Decodes OTLP trace requests for one server's limits and redaction rules.

    Safe to share between threads: the memory is a dict, and concurrent requests at
    worst both learn the same attribute.
    """

    __slots__ = (
        "_clean_names",
        "_known",
        "_limits",
        "_max_attributes",
        "_redactor",
        "_walk_threshold",
    )

    def __init__(
        self, limits: IngestLimits = DEFAULT_LIMITS, redactor: IngestRedactor | None = None
    ) -> None:
        self._limits = limits
        self._redactor = redactor
        self._max_attributes = limits.max_attributes_per_span
        self._walk_threshold = limits.walk_threshold
        self._known: dict[bytes, _Entry | _Uncommon] = {}
        # Span names redaction leaves alone; past ``MAX_REMEMBERED`` no more are added.
        self._clean_names: set[str] = set()

    @property
    def remembered(self) -> int:
        """How many distinct encoded attributes are remembered now."""
        return len(self._known)

    def decode(self, body: bytes, payload_format: PayloadFormat) -> SpanBatch:
        """What ``decode.decode(body, payload_format, limits, redactor)`` returns or raises."""
        if payload_format is not PayloadFormat.PROTOBUF:
            return decode(body, payload_format, self._limits, self._redactor)
        try:
            request = RawAttributesRequest.FromString(body)
            check_span_count(
                sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans),
                self._limits,
            )
            return SpanBatch.from_columns(self._columns(request))
        except (DecodeError, ThreadlineError, RecursionError):
            # Refused: the stock decoder says why, in its words and order.
            return decode(body, payload_format, self._limits, self._redactor)

    def _columns(self, request: Any) -> dict[str, list[Any]]:
        """``decode._columns`` for a request of ``wire.RawAttributesRequest``.

        The same steps in the same order; it differs in reading the attributes through
        ``_common`` and in collecting a row tuple per span, turned into columns at the
        end (one append per span instead of one per column).
        """
        limits = self._limits
        redactor = self._redactor
        max_chars = limits.max_attribute_value_length
        common = self._common
        clean_names = self._clean_names
        messages = self.messages
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        for r, resource_spans in enumerate(request.resource_spans):
            resource = resource_of(resource_spans, limits, redactor)
            service, resource_json = resource.service, resource.json
            resource_session, resource_user, resource_journey = resource.journey_keys
            for s, scope_spans in enumerate(resource_spans.scope_spans):
                scope_name = scope_spans.scope.name
                scope_found: list[str] = []
                if redactor is not None:
                    scope_name = redactor.text(scope_name, "scope.name", scope_found)
                scope_name = cut_text(scope_name, limits)
                for k, span in enumerate(scope_spans.spans):
                    trace_id = span.trace_id
                    span_id = span.span_id
                    parent_id = span.parent_span_id
                    start = span.start_time_unix_nano
                    end = span.end_time_unix_nano
                    if (
                        len(trace_id) != TRACE_ID_BYTES
                        or trace_id == ZERO_TRACE_ID
                        or len(span_id) != SPAN_ID_BYTES
                        or span_id == ZERO_SPAN_ID
                        or (parent_id and len(parent_id) != SPAN_ID_BYTES)
                        or start > MAX_TIME_NS
                        or end > MAX_TIME_NS
                    ):
                        raise BadRequest("invalid span")  # the stock decoder says which
                    name = span.name
                    status = span.status
                    status_message = status.message
                    found: list[str] | None = None
                    if redactor is not None:  # before the limits cut anything
                        found = list(scope_found)
                        if name not in clean_names:
                            before = len(found)
                            name = redactor.text(name, "name", found)
                            if len(found) == before and len(clean_names) < MAX_REMEMBERED:
                                clean_names.add(name)
                        if status_message:
                            status_message = redactor.text(status_message, "status.message", found)
                    events = span.events
                    events_json = (
                        _events_json(events, limits, redactor, found)
                        if events
                        else (_NO_EVENTS, False)
                    )
                    links_json = (
                        _links_json(span, r, s, k, limits, redactor, found)
                        if span.links
                        else (_NO_LINKS, False)
                    )
                    raw_attributes = span.attributes
                    marks: list[str] = []
                    if (
                        len(name) > max_chars
                        or len(status_message) > max_chars
                        or events_json[1]
                        or links_json[1]
                    ):
                        if len(name) > max_chars:
                            name = name[:max_chars]
                            marks.append(NAME_MARK)
                        if len(status_message) > max_chars:
                            status_message = status_message[:max_chars]
                            marks.append(STATUS_MESSAGE_MARK)
                        if events_json[1]:
                            marks.append(EVENTS_MARK)
                        if links_json[1]:
                            marks.append(LINKS_MARK)
                        known = None
                    else:
                        known = common(raw_attributes, found)
                    if known is None:
                        redact = None if found is None else listed(redactor, found)  # type: ignore[arg-type]
                        span_attrs, attrs_json = bounded_attributes(
                            messages(raw_attributes), limits, marks, redact
                        )
                        session = journey_key(span_attrs.get(SESSION_ID))
                        user = journey_key(span_attrs.get(USER_ID))
                        journey = journey_key(span_attrs.get(JOURNEY_ID))
                    else:
                        keys, attrs_json = known
                        session = keys.get(SESSION_ID)
                        user = keys.get(USER_ID)
                        journey = keys.get(JOURNEY_ID)
                    kind = span.kind
                    code = status.code
                    append(
                        (
                            trace_id.hex(),
                            span_id.hex(),
                            parent_id.hex() if parent_id else None,
                            service,
                            name,
                            _KINDS[kind] if 0 <= kind < _KIND_COUNT else _KINDS[0],
                            start,
                            end,
                            end - start if end > start else 0,
                            _STATUSES[code] if 0 <= code < _STATUS_COUNT else _STATUSES[0],
                            status_message,
                            session or resource_session,
                            user or resource_user,
                            journey or resource_journey,
                            attrs_json,
                            resource_json,
                            events_json[0],
                            links_json[0],
                            scope_name,
                        )
                    )
        if not rows:
            return {name: [] for name in COLUMNS}
        return dict(zip(COLUMNS, map(list, zip(*rows, strict=True)), strict=True))

    # -- attributes ------------------------------------------------------------------

    def _common(
        self, attributes: Any, found: list[str] | None
    ) -> tuple[dict[str, Any], str] | None:
        """The journey columns among ``attributes`` and their JSON; None: general path."""
        if found or len(attributes) > self._max_attributes:
            return None
        known = self._known
        # Comprehensions rather than one loop: this runs for every span, and each of
        # them costs a fraction of a loop iteration's attribute and method lookups.
        try:
            entries = [known[raw] for raw in attributes]
        except KeyError:  # an attribute not met before (or no longer remembered)
            get = known.get
            learn = self._learn
            entries = [get(raw) or learn(raw) for raw in attributes]
        try:
            members = {entry[0]: entry[1] for entry in entries}  # type: ignore[index]
        except TypeError:
            return None  # an uncommon attribute (it has no member)
        if len(members) != len(entries):
            return None  # a repeated key: the general path keeps its last value
        journey = {entry[0]: entry[3] for entry in entries if entry[2]}  # type: ignore[index]
        text = "{" + ",".join(members.values()) + "}"
        if len(text) > self._walk_threshold:
            return None  # something may be over a limit: the general path walks it
        return journey, text

    def messages(self, attributes: Any) -> list[KeyValue]:
        """The encoded attributes parsed (a malformed one raises ``DecodeError``)."""
        return [KeyValue.FromString(raw) for raw in attributes]

    def _learn(self, raw: bytes) -> _Entry | _Uncommon:
        kv = KeyValue.FromString(raw)
        values = {kv.key: any_value(kv.value)}
        entry: _Entry | _Uncommon
        if (
            self._redactor is not None
            and self._redactor.redactor.attributes(values, []) is not None
        ):
            entry = _UNCOMMON
        else:
            # The member is exactly what ``dumps`` writes for this key inside a dict: for a
            # string, the two strings as its encoder writes them (a new id in every
            # request, a path or a session, is learned here; a whole encoder pass costs
            # several times as much). The journey column's value is kept ready.
            value = values[kv.key]
            is_journey = kv.key in _JOURNEY_KEYS
            entry = (
                kv.key,
                f"{_text(kv.key)}:{_text(value)}" if type(value) is str else dumps(values)[1:-1],
                is_journey,
                journey_key(value) if is_journey else None,
            )
        if len(raw) <= MAX_REMEMBERED_BYTES:
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
            self._known[raw] = entry
        return entry

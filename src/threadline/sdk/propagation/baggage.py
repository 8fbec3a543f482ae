"""W3C Baggage as an OpenTelemetry ``TextMapPropagator``.

https://www.w3.org/TR/baggage/ (sections are named by their anchors)

What differs from the stock OpenTelemetry ``W3CBaggagePropagator``:

* values are percent-encoded as RFC 3986 §2.1 says (#value): ``+`` is a plus sign, not
  a space (octets that are not UTF-8 decode to U+FFFD). The stock propagator uses form
  encoding (``quote_plus``/``unquote_plus``), which turns a received ``+`` into a
  space. On the way out ``+`` is sent as ``%2B`` (allowed: "Characters which are not
  required to be percent-encoded MAY be percent-encoded"), so stock peers read it
  right too. Keys are tokens and are neither encoded nor decoded;
* every ``baggage`` field line is read and combined (#baggage-http-header-format:
  "Multiple baggage headers are allowed"); the stock propagator reads the first one only;
* a header over 8192 bytes keeps the list-members that fit ("some list-members MAY be
  dropped until the resulting baggage-string is 8192 bytes or less", #limits) instead of
  being dropped whole; members past the grammar's 180 are dropped;
* properties (``;k=v;flag``) are kept apart from the value (the stock propagator glues
  them onto the value) and are sent on again with the entry while its value is
  unchanged; a malformed property is dropped and its member kept;
* a repeated key keeps its first entry ("keys may be deduplicated by keeping the first
  entry", #mutating-baggage); the stock propagator keeps the last.

An invalid member (no ``=``, a key that is not a token, a value with characters outside
``baggage-octet``) is skipped without affecting the others (#mutating-baggage: a system
"MAY remove that entry").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from urllib.parse import quote, unquote

from opentelemetry.context import Context, create_key, get_current, get_value, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from threadline.sdk.context_keys import span_and_baggage, with_baggage
from threadline.sdk.propagation.fields import field_values

BAGGAGE: Final = "baggage"
# #definition: baggage-string = list-member 0*179( OWS "," OWS list-member )
MAX_MEMBERS: Final = 180
# #limits: a platform MUST propagate a baggage-string of up to 8192 bytes; more MAY be dropped.
MAX_BAGGAGE_BYTES: Final = 8192

# RFC 9110 §5.6.2 token = 1*tchar
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# #definition: value = *baggage-octet; %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
_VALUE: Final = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# Baggage-octets that are sent as they are. "%" is absent because a literal "%" must be
# encoded to survive decoding; "+" because form decoders (the stock propagator) read it
# as a space.
_SEND_AS_IS: Final = "!#$&'()*/:<=>?@[]^`{|}"
_OWS: Final = " \t"
# What quote(value, safe=_SEND_AS_IS) returns unchanged: its always-safe characters
# (letters, digits, "_.-~") and _SEND_AS_IS.
_SENT_UNCHANGED: Final = re.compile(r"[A-Za-z0-9_.\-~!#$&'()*/:<=>?@\[\]^`{|}]*")

_PROPERTIES_KEY: Final = create_key("threadline-baggage-properties")


@dataclass(frozen=True, slots=True)
class ReceivedProperties:
    """The properties that arrived with one baggage entry, and the value they belong to."""

    value: str
    properties: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BaggageMember:
    """One parsed list-member: decoded value, properties as received (without OWS)."""

    key: str
    value: str
    properties: tuple[str, ...]


def parse_member(text: str) -> BaggageMember | None:
    """The list-member in ``text`` (already stripped of surrounding OWS), or None if invalid."""
    head, *raw_properties = text.split(";") if ";" in text else (text,)
    key, separator, value = head.partition("=")
    if not separator:
        return None
    key = key.strip(_OWS)
    value = value.strip(_OWS)
    if _TOKEN.fullmatch(key) is None or _VALUE.fullmatch(value) is None:
        return None
    properties: tuple[str, ...] = ()
    if raw_properties:
        normalized = (_normalize_property(raw) for raw in raw_properties)
        properties = tuple(valid for valid in normalized if valid is not None)
    return BaggageMember(key, unquote(value, errors="replace"), properties)


def parse_baggage(field_lines: Iterable[str]) -> list[BaggageMember]:
    """The valid members of all ``baggage`` field lines, first of each key, within the limits."""
    members: list[BaggageMember] = []
    seen: set[str] = set()
    size = 0
    for line in field_lines:
        for raw_member in line.split(","):
            if len(members) >= MAX_MEMBERS:
                return members
            text = raw_member.strip(_OWS)
            if not text:
                continue  # empty list elements are tolerated (RFC 9110 §5.6.1)
            member = parse_member(text)
            if member is None or member.key in seen:
                continue
            added = len(text) + (1 if members else 0)
            if size + added > MAX_BAGGAGE_BYTES:
                continue  # whole members only; a later, shorter one may still fit
            seen.add(member.key)
            members.append(member)
            size += added
    return members


def encode_member(key: str, value: str, properties: tuple[str, ...] = ()) -> str | None:
    """``key=value[;property...]`` with the value percent-encoded, or None if ``key`` is
    not a token."""
    if _TOKEN.fullmatch(key) is None:
        return None
    # Most values (ids, tokens) hold only characters quote() leaves as they are.
    sent = value if _SENT_UNCHANGED.fullmatch(value) else quote(value, safe=_SEND_AS_IS)
    encoded = f"{key}={sent}"
    return ";".join((encoded, *properties)) if properties else encoded


def received_properties(context: Context | None = None) -> Mapping[str, ReceivedProperties]:
    """The properties extracted with each baggage entry of ``context`` (current if None)."""
    value = get_value(_PROPERTIES_KEY, context)
    return value if isinstance(value, Mapping) else MappingProxyType({})


class BaggagePropagator(TextMapPropagator):
    """The ``baggage`` header exactly as W3C Baggage specifies."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """``context`` (current if None) with the carrier's baggage entries added."""
        context = get_current() if context is None else context
        entries, properties = _parsed(field_values(getter, carrier, BAGGAGE))
        if not entries:
            return context
        # As set_baggage() once per member would: the context's entries, then these.
        _, existing = span_and_baggage(context)
        context = with_baggage(context, {**existing, **entries} if existing else entries)
        if properties is not None:
            context = set_value(_PROPERTIES_KEY, properties, context)
        return context

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Write the context's baggage to the carrier, whole members only, within the limits."""
        global _last_injected
        _, entries = span_and_baggage(get_current() if context is None else context)
        if not entries:
            return
        received = get_value(_PROPERTIES_KEY, context)
        last = _last_injected  # one tuple, read and replaced whole: safe across threads
        if last[0] is entries and last[1] is received:
            if last[2]:
                setter.set(carrier, BAGGAGE, last[2])
            return
        header = _encoded(entries, received_properties(context))
        _last_injected = (entries, received, header)
        if header:
            setter.set(carrier, BAGGAGE, header)

    @property
    def fields(self) -> set[str]:
        return {BAGGAGE}


def _encoded(entries: Mapping[str, object], properties: Mapping[str, ReceivedProperties]) -> str:
    """The ``baggage`` value for ``entries``: whole members only, within the limits."""
    encoded: list[str] = []
    size = 0
    for key, raw_value in entries.items():
        if len(encoded) >= MAX_MEMBERS:
            break
        value = raw_value if isinstance(raw_value, str) else str(raw_value)
        received = properties.get(key)
        # Properties describe the value they came with; a new value travels without them.
        kept = received.properties if received is not None and received.value == value else ()
        member = encode_member(key, value, kept)
        if member is None:
            continue
        added = len(member) + (1 if encoded else 0)
        if size + added > MAX_BAGGAGE_BYTES:
            continue
        encoded.append(member)
        size += added
    return ",".join(encoded)


# The same few baggage headers arrive request after request (a journey's keys): their
# parse is kept by field lines, within bounds so that hostile headers cannot grow it.
# The entries mapping is stored in contexts as it is; it is never changed in place.
PARSED_CACHE_SIZE: Final = 256
CACHED_LINES_CHARS: Final = 1024
_Parsed = tuple[dict[str, object], Mapping[str, ReceivedProperties] | None]
_parsed_cache: dict[tuple[str, ...], _Parsed] = {}
# The last baggage encoded, with the properties it was encoded with, and its header:
# every outgoing call of a request sends the same baggage.
_last_injected: tuple[object, object, str] = (None, None, "")


def _parsed(field_lines: Sequence[str]) -> _Parsed:
    """(entries, properties or None) of the ``baggage`` field lines, cached."""
    lines = tuple(field_lines)
    if not lines:
        return {}, None
    found = _parsed_cache.get(lines)
    if found is not None:
        return found
    entries: dict[str, object] = {}
    properties: dict[str, ReceivedProperties] = {}
    for member in parse_baggage(lines):
        entries[member.key] = member.value
        if member.properties:
            properties[member.key] = ReceivedProperties(member.value, member.properties)
    parsed: _Parsed = (entries, MappingProxyType(properties) if properties else None)
    if sum(map(len, lines)) <= CACHED_LINES_CHARS:
        if len(_parsed_cache) >= PARSED_CACHE_SIZE:
            _parsed_cache.clear()
        _parsed_cache[lines] = parsed
    return parsed


def _normalize_property(raw: str) -> str | None:
    # #definition: property = key OWS "=" OWS value / key OWS; kept opaque, without the OWS.
    key, separator, value = raw.partition("=")
    key = key.strip(_OWS)
    if _TOKEN.fullmatch(key) is None:
        return None
    if not separator:
        return key
    value = value.strip(_OWS)
    if _VALUE.fullmatch(value) is None:
        return None
    return f"{key}={value}"

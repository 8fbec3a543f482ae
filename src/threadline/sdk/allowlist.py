"""Journey baggage goes only to allowed hosts; everyone else gets ``traceparent`` alone.

Baggage carries the session and (pseudonymised) user id, which must not reach third
parties. The decision is taken per outgoing request, in two steps, because the
propagator that writes the headers does not know where the request goes:

1. the HTTP client instrumentations call :func:`mark_destination` from their request
   hook, right after the client span starts and right before they inject. A host not
   on the list puts that span's id in a small bounded table;
2. :class:`BaggageAllowListPropagator`, wrapping the propagator ``configure()``
   installs, injects for a span in that table with the baggage cleared.

Anything that injects without a hook (message brokers, gRPC) sends baggage: those are
peers the service was configured to talk to.

Entries of the list: ``loopback`` (127.0.0.0/8, ::1, ``localhost``), ``private``
(RFC 1918, RFC 4193 and link-local addresses), an IP address, a CIDR block, a host
name, or ``.example.com`` for a domain and its subdomains. Host names are compared as
written, never resolved: a DNS lookup per request would slow every call and could be
steered by whoever controls the resolver.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from threadline.settings import ConfigError

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: Final = "loopback"
PRIVATE: Final = "private"

# What ``private`` means: RFC 1918, link-local, RFC 4193 unique-local and IPv6 link-local.
# Spelled out because Python's ``is_private`` also admits documentation and benchmark
# ranges (192.0.2.0/24, 198.18.0.0/15, ...) that are not a service's own network.
PRIVATE_NETWORKS: Final[tuple[IpNetwork, ...]] = tuple(
    ipaddress.ip_network(block)
    for block in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)

# Client spans whose request goes to a host off the list. A span is looked up only
# between its request hook and its inject (microseconds apart), so a few thousand
# entries cover every request in flight; older ones are forgotten first.
MAX_TRACKED_SPANS: Final = 4096
# Origins (scheme + authority) whose decision is remembered; a service calls a handful,
# and past this many, new ones are decided per request instead of growing the table.
MAX_REMEMBERED_ORIGINS: Final = 1024


@dataclass(frozen=True, slots=True)
class HostAllowList:
    """The hosts that may receive journey baggage, parsed from the setting."""

    loopback: bool = False
    private: bool = False
    networks: tuple[IpNetwork, ...] = ()
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> HostAllowList:
        """The list in ``text``; raises ``ConfigError`` naming the entry that is not usable."""
        loopback = private = False
        networks: list[IpNetwork] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == LOOPBACK:
                loopback = True
            elif entry == PRIVATE:
                private = True
            elif entry.startswith("."):
                if len(entry) < 2 or not _is_host_name(entry[1:]):
                    raise _bad_entry(raw)
                suffixes.append(entry)
            elif _looks_like_address(entry):
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError as exc:
                    raise _bad_entry(raw) from exc
            elif _is_host_name(entry):
                names.add(entry.rstrip("."))
            else:
                raise _bad_entry(raw)
        return cls(loopback, private, tuple(networks), frozenset(names), tuple(suffixes))

    def allows(self, host: str | None) -> bool:
        """Whether a request to ``host`` (a name or an IP literal) may carry baggage."""
        if not host:
            return False
        name = host.strip("[]").lower().rstrip(".")
        try:
            address = ipaddress.ip_address(name.partition("%")[0])
        except ValueError:
            return self._allows_name(name)
        if address.is_loopback:
            if self.loopback:
                return True
        elif self.private and any(address in network for network in PRIVATE_NETWORKS):
            return True
        return any(address in network for network in self.networks)

    def _allows_name(self, name: str) -> bool:
        if self.loopback and (name == "localhost" or name.endswith(".localhost")):
            return True
        if name in self.names:
            return True
        return any(name.endswith(suffix) or name == suffix[1:] for suffix in self.suffixes)


def host_of(url: object) -> str | None:
    """The host of a URL given as a string or as an httpx/yarl URL object."""
    host = getattr(url, "host", None)
    if isinstance(host, str):
        return host
    if isinstance(host, bytes):
        return host.decode("ascii", "replace")
    try:
        return urlsplit(str(url)).hostname
    except ValueError:
        return None


class _WithheldSpans:
    """Span ids whose outgoing request must not carry baggage (bounded, thread-safe)."""

    def __init__(self) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, span_id: int) -> None:
        with self._lock:
            self._ids[span_id] = None
            if len(self._ids) > MAX_TRACKED_SPANS:
                self._ids.popitem(last=False)

    def __contains__(self, span_id: object) -> bool:
        return span_id in self._ids


_withheld = _WithheldSpans()


class DestinationDecisions:
    """``allow_list``'s decision per URL origin, remembered: a service calls the same few
    hosts over and over, and parsing each URL costs more than the rest of the hook.

    Keyed by the text of a string URL up to the end of its authority (scheme, ``//``,
    user info, host, port): two URLs that share that text share their host, so the
    decision taken for one holds for the other. Other URL shapes are decided each time.
    """

    def __init__(self, allow_list: HostAllowList) -> None:
        self.allow_list = allow_list
        self._decisions: dict[str, bool] = {}

    def allows(self, url: object) -> bool:
        """Whether a request to ``url`` may carry baggage."""
        if type(url) is not str:
            return self.allow_list.allows(host_of(url))
        origin = _origin_text(url)
        if origin is None:
            return self.allow_list.allows(host_of(url))
        allowed = self._decisions.get(origin)
        if allowed is None:
            allowed = self.allow_list.allows(host_of(url))
            if len(self._decisions) < MAX_REMEMBERED_ORIGINS:
                self._decisions[origin] = allowed
        return allowed


def _origin_text(url: str) -> str | None:
    """``url`` up to the end of its authority, or None when it has no ``//`` authority or
    holds characters urlsplit would remove (then its text is not its authority)."""
    start = url.find("//")
    if start < 0 or not url.isprintable() or url != url.strip():
        return None
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start + 2)
        if 0 <= found < end:
            end = found
    return url[:end]


def mark_destination(
    span: trace.Span, url: object, allow_list: HostAllowList | DestinationDecisions
) -> bool:
    """Record whether the request ``span`` is about to send may carry baggage; returns it."""
    if isinstance(allow_list, DestinationDecisions):
        allowed = allow_list.allows(url)
    else:
        allowed = allow_list.allows(host_of(url))
    if not allowed:
        span_id = span.get_span_context().span_id
        if span_id:
            _withheld.add(span_id)
    return allowed


class BaggageAllowListPropagator(TextMapPropagator):
    """Wraps a propagator; injects without baggage for requests marked as leaving the list."""

    def __init__(self, inner: TextMapPropagator) -> None:
        self._inner = inner

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        return self._inner.extract(carrier, context, getter)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_id = trace.get_current_span(context).get_span_context().span_id
        if span_id in _withheld:
            context = baggage.clear(context)
        self._inner.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return self._inner.fields


def _looks_like_address(entry: str) -> bool:
    head = entry.strip("[]").partition("/")[0]
    return ":" in head or head.replace(".", "").isdigit()


def _is_host_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(
        label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
        for label in labels
    )


def _bad_entry(raw: str) -> ConfigError:
    return ConfigError(
        f"baggage_allowed_hosts (THREADLINE_BAGGAGE_ALLOWED_HOSTS): {raw.strip()!r} is not "
        "'loopback', 'private', an IP address, a CIDR block, a host name or a '.domain' suffix"
    )

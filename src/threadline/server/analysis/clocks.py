"""Which spans share a clock: the same host, the same process, or a call over loopback.

Clock-skew adjustment (``skew``) may only move a span whose clock differs from its
parent's. Spans read the time of the machine they ran on, so two spans of one host
are on one clock however many processes or services they belong to, and moving
one of them against the other would invent skew that was never there (a server
span that ends a little after its client span, because the framework closes it
after the response was written, is a real measurement on one clock).

What tells us two spans ran on one machine, strongest first:

1. **Host identity** in the resource (``host.id``, ``host.name``, ``k8s.node.name``):
   when both spans name their host, the names decide, either way.
2. **The same process**: equal ``service.instance.id`` (a ``process.pid`` alone
   means nothing across machines, and with a host name rule 1 already decided).
3. **A call over loopback**: the caller's CLIENT span targets a loopback address
   (``server.address``, ``net.peer.name`` or the host of ``url.full``/``http.url``)
   *and* the callee's SERVER span saw a loopback peer (``client.address``,
   ``network.peer.address``, ``net.peer.ip``, ``net.sock.peer.addr``). Both sides
   are required: behind a service-mesh sidecar the server sees the proxy on
   loopback while its caller, on another machine, called a remote name.
4. Otherwise, with nothing recorded: the same **service** is taken to share its
   parent's clock (a hop within a service is a call within a process), another
   service not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from threadline.server.model import SpanKind, SpanRecord

# Resource attributes naming the machine a span ran on (OpenTelemetry semantic
# conventions). A Kubernetes node is one machine: its pods share its clock.
HOST_KEYS: Final = ("host.id", "host.name", "k8s.node.name")
INSTANCE_KEY: Final = "service.instance.id"
# Where a SERVER span records the address of the peer that called it (stable and
# older semantic conventions).
PEER_ADDRESS_KEYS: Final = (
    "client.address",
    "network.peer.address",
    "net.peer.ip",
    "net.sock.peer.addr",
)
# Where a CLIENT span records the address it called.
TARGET_ADDRESS_KEYS: Final = ("server.address", "net.peer.name", "network.peer.address")
TARGET_URL_KEYS: Final = ("url.full", "http.url")


def same_clock(parent: SpanRecord, child: SpanRecord) -> bool:
    """True when ``child`` read the same clock as ``parent`` (see the module docstring)."""
    for key in HOST_KEYS:
        parent_host, child_host = _text(parent.resource, key), _text(child.resource, key)
        if parent_host and child_host:
            return parent_host == child_host
    parent_instance = _text(parent.resource, INSTANCE_KEY)
    child_instance = _text(child.resource, INSTANCE_KEY)
    if parent_instance and parent_instance == child_instance:
        return True
    if loopback_call(parent, child):
        return True
    if parent_instance and child_instance:
        # Two processes known to differ, and nothing says they share a machine.
        return False
    return parent.service_name == child.service_name


def loopback_call(parent: SpanRecord, child: SpanRecord) -> bool:
    """True when a CLIENT span called loopback and its SERVER child saw a loopback peer."""
    if parent.kind is not SpanKind.CLIENT or child.kind is not SpanKind.SERVER:
        return False
    return _targets_loopback(parent.attributes) and _peer_is_loopback(child.attributes)


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1), with or without a port."""
    host = address.strip().lower()
    if host.startswith("[") and "]" in host:
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _targets_loopback(attributes: Mapping[str, object]) -> bool:
    for key in TARGET_ADDRESS_KEYS:
        value = _text(attributes, key)
        if value:
            return is_loopback(value)
    for key in TARGET_URL_KEYS:
        value = _text(attributes, key)
        if value:
            try:
                host = urlsplit(value).hostname
            except ValueError:
                return False
            return host is not None and is_loopback(host)
    return False


def _peer_is_loopback(attributes: Mapping[str, object]) -> bool:
    for key in PEER_ADDRESS_KEYS:
        value = _text(attributes, key)
        if value:
            return is_loopback(value)
    return False


def _text(attributes: Mapping[str, object], key: str) -> str:
    value = attributes.get(key)
    if value is None or isinstance(value, (list, tuple, dict)):
        return ""
    return str(value)

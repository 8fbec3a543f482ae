"""The baggage allow-list: which hosts may receive the journey."""

from __future__ import annotations

import pytest

from threadline.sdk import setup
from threadline.sdk.allowlist import (
    MAX_REMEMBERED_ORIGINS,
    DestinationDecisions,
    HostAllowList,
    host_of,
)
from threadline.settings import ConfigError


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("10.1.2.3", True),
        ("192.168.0.7", True),
        ("172.16.5.5", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("169.254.1.1", True),
        ("8.8.8.8", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("api.stripe.com", False),
        ("", False),
    ],
)
def test_default_list_is_loopback_and_private(host: str, allowed: bool) -> None:
    """With the default setting only loopback and private addresses get baggage."""
    assert HostAllowList.parse("loopback,private").allows(host) is allowed


def test_names_suffixes_and_networks() -> None:
    """Explicit hosts, domain suffixes and CIDR blocks are honoured and nothing else."""
    allow = HostAllowList.parse("orders.internal, .svc.cluster.local, 203.0.113.0/24, 127.0.0.1")
    assert allow.allows("orders.internal")
    assert allow.allows("ORDERS.internal.")
    assert allow.allows("billing.svc.cluster.local")
    assert allow.allows("203.0.113.9")
    assert allow.allows("127.0.0.1")
    assert not allow.allows("127.0.0.2")
    assert not allow.allows("localhost")
    assert not allow.allows("evil-orders.internal.example")
    assert not allow.allows("10.0.0.1")


def test_private_does_not_imply_loopback() -> None:
    """``private`` alone does not admit loopback addresses (Python counts them as private)."""
    allow = HostAllowList.parse("private")
    assert allow.allows("10.0.0.1")
    assert not allow.allows("127.0.0.1")


@pytest.mark.parametrize("entry", ["300.1.1.1/8", "exa mple.com", "-", "."])
def test_bad_entry_is_an_error_naming_the_setting(entry: str) -> None:
    """A typo in the list fails loudly instead of silently sending or withholding baggage."""
    with pytest.raises(ConfigError, match="baggage_allowed_hosts"):
        HostAllowList.parse(f"loopback,{entry}")


def test_host_of_url_shapes() -> None:
    """Hosts are read from plain URLs and from URL objects with a ``host``."""
    assert host_of("http://127.0.0.2:8080/x?y=1") == "127.0.0.2"
    assert host_of("http://[::1]:80/") == "::1"

    class WithHost:
        host = b"example.org"

    assert host_of(WithHost()) == "example.org"


def test_configure_rejects_a_bad_list_naming_the_setting() -> None:
    """Settings with an unusable allow-list fail at configure time, not on the first request."""
    with pytest.raises(ConfigError, match="THREADLINE_BAGGAGE_ALLOWED_HOSTS"):
        setup.load_settings({"baggage_allowed_hosts": "loopback, not a host"})


_URL_SHAPES = (
    "http://127.0.0.1:8080/items/7",
    "http://127.0.0.1:8080/items/8?q=1",
    "https://api.partner.example/v1/orders",
    "https://api.partner.example.evil.net/v1/orders",
    "https://api.partner.example@evil.net/v1/orders",
    "https://evil.net#@api.partner.example/",
    "https://evil.net?@api.partner.example/",
    "http://[::1]:9000/x",
    "http://10.1.2.3/x",
    "http://8.8.8.8/x",
    "http://localhost/x",
    "http:/127.0.0.1/no-authority",
    "/relative//path",
    " http://8.8.8.8/leading-space",
    "http://8.8.8.8\t/tab",
    "",
)


@pytest.mark.parametrize("order", [1, -1])
def test_remembered_decisions_match_the_list_for_every_url_shape(order: int) -> None:
    """The hook's remembered per-origin decisions equal deciding each URL afresh, in any
    order: a host that shares a prefix with an allowed one is never let through."""
    allow_list = HostAllowList.parse("loopback,private,api.partner.example")
    decisions = DestinationDecisions(allow_list)
    for _ in range(2):  # the second pass answers from what the first remembered
        for url in _URL_SHAPES[::order]:
            assert decisions.allows(url) == allow_list.allows(host_of(url)), url


def test_remembered_decisions_stay_bounded() -> None:
    """Past the bound, new origins are decided per request and still decided right."""
    allow_list = HostAllowList.parse("loopback")
    decisions = DestinationDecisions(allow_list)
    for index in range(MAX_REMEMBERED_ORIGINS + 50):
        assert not decisions.allows(f"http://host-{index}.example/x")
    assert decisions.allows("http://127.0.0.1/x")
    assert len(decisions._decisions) == MAX_REMEMBERED_ORIGINS

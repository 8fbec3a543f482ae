"""The baggage allow-list: which hosts may receive the journey."""

from __future__ import annotations

import pytest

from threadline.sdk import setup
from threadline.sdk.allowlist import HostAllowList, host_of
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

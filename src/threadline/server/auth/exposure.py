"""Secure by default: an open server (no tokens) may only listen on loopback.

On ``127.0.0.1`` only processes of this machine can connect, so zero configuration
is safe on a laptop. Any other address (``0.0.0.0``, a LAN or public address, a
host name) reaches other machines, and without tokens anyone there could read every
span; the server refuses to start unless tokens are configured or ``insecure`` says
that is what is wanted.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Final

from threadline.settings import ConfigError, ServerSettings

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES: Final = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        # A host name may resolve to anything; only the names above are known safe.
        return False


def check_exposure(settings: ServerSettings, *, has_tokens: bool) -> None:
    """Raise ``ConfigError`` for an open server on a non-loopback address; warn on risks."""
    loopback = is_loopback(settings.host)
    if not loopback and not has_tokens:
        if not settings.insecure:
            raise ConfigError(
                f"host: refusing to listen on {settings.host} with no access tokens, which "
                "would let anyone who can connect read every span; configure tokens "
                "(tokens or tokens_file), listen on 127.0.0.1, or pass --insecure"
            )
        logger.warning(
            "Threadline is listening on %s with no access tokens (--insecure): anyone who "
            "can connect may read and write every span",
            settings.host,
        )
    tls = settings.serves_tls
    if not loopback and has_tokens and not tls:
        logger.warning(
            "Threadline is listening on %s over plain HTTP: access tokens cross the network "
            "unencrypted; use --tls-cert/--tls-key or a TLS-terminating proxy",
            settings.host,
        )
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("tls_cert, tls_key: give both the certificate and its key, or neither")

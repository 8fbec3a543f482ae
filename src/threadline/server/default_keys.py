"""A warning at start when stored hashes can be recomputed by anyone.

Redaction at ingest hashes values (an e-mail address in ``user.id``, say) under
``redaction_hash_key``, and erasure finds pseudonymised ids under ``user_id_key``.
Left empty, both use built-in keys that are public (they are in the source), so
whoever sees a stored ``h_…`` value can hash guessed addresses and confirm one. On
loopback only local users can read the store; on any other address the server says
so once, at start, naming the settings to set.
"""

from __future__ import annotations

import logging

from threadline.server.auth import is_loopback
from threadline.settings import ENV_PREFIX, ServerSettings

logger = logging.getLogger(__name__)


def keys_left_default(settings: ServerSettings) -> list[str]:
    """The key settings that are empty, so their built-in value is used."""
    unset = []
    if settings.redaction and not settings.redaction_hash_key:
        unset.append("redaction_hash_key")
    if not settings.user_id_key:
        unset.append("user_id_key")
    return unset


def warn_on_default_keys(settings: ServerSettings) -> None:
    """Log one warning when a non-loopback server runs with a built-in key."""
    unset = keys_left_default(settings)
    if not unset or is_loopback(settings.host):
        return
    logger.warning(
        "Threadline is listening on %s with the built-in %s: anyone can recompute the "
        "hashes stored with it and confirm a guessed e-mail address or user id; set %s to "
        "the secret your services use (see docs/security.md)",
        settings.host,
        " and ".join(unset),
        " and ".join(ENV_PREFIX + name.upper() for name in unset),
    )

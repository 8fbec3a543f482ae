"""Who may do what: the three roles, the principal a request acts as, and the policy.

The policy is decided from the method and path alone, so every endpoint is covered
the moment it exists, whichever router adds it:

| request                                | roles allowed          |
|----------------------------------------|------------------------|
| ``/login``, ``/logout``                | anyone                 |
| ``/healthz``, ``/readyz`` (probes)     | anyone                 |
| ``POST /v1/traces``                    | ``ingest``, ``admin``  |
| ``GET /api/sampling``                  | ``ingest``, ``viewer``, ``admin`` |
| any other ``GET``/``HEAD``             | ``viewer``, ``admin``  |
| anything else (``PUT``, ``POST``, ``DELETE``) | ``admin``       |

So a token leaked from a service's configuration cannot read spans (it may only
send them and read the sampling rules services poll), and a dashboard's token
cannot write anything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from threadline.conventions import API_PREFIX, OTLP_PATHS
from threadline.server.health import HEALTH_PATH, READY_PATH

LOGIN_PATH: Final = "/login"
# Read by every instrumented service (with its ingest token) to learn how to sample.
SERVICE_READABLE_PATHS: Final = frozenset({f"{API_PREFIX}/sampling"})
LOGOUT_PATH: Final = "/logout"
# Orchestrators' probes carry no token and the answers hold no span data.
PUBLIC_PATHS: Final = frozenset({LOGIN_PATH, LOGOUT_PATH, HEALTH_PATH, READY_PATH})

_READ_METHODS: Final = frozenset({"GET", "HEAD"})


class Role(enum.StrEnum):
    INGEST = "ingest"
    VIEWER = "viewer"
    ADMIN = "admin"

    def allows(self, needed: Role | frozenset[Role]) -> bool:
        """Whether a token of this role may do what ``needed`` (one role or several) allows."""
        if self is Role.ADMIN:
            return True
        return self is needed if isinstance(needed, Role) else self in needed


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a token's name and role, or the open server's anonymous admin."""

    name: str
    role: Role

    @property
    def sees_sensitive_fields(self) -> bool:
        return self.role is not Role.VIEWER


# The server has no tokens: nothing is checked and nothing is masked.
ANONYMOUS: Final = Principal(name="anonymous", role=Role.ADMIN)


_INGEST: Final = frozenset({Role.INGEST})
_READERS: Final = frozenset({Role.VIEWER})
_SERVICES_AND_READERS: Final = frozenset({Role.INGEST, Role.VIEWER})
_ADMIN: Final = frozenset({Role.ADMIN})


def required_role(method: str, path: str) -> frozenset[Role] | None:
    """The roles (besides admin) a request is allowed for; None: anyone (login, probes)."""
    if path in PUBLIC_PATHS:
        return None
    if path in OTLP_PATHS:
        return _INGEST
    if method.upper() in _READ_METHODS:
        return _SERVICES_AND_READERS if path in SERVICE_READABLE_PATHS else _READERS
    return _ADMIN

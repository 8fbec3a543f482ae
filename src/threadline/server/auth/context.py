"""The principal a request acts as, as the access-control middleware left it.

``AccessControl`` authenticates every request before any route runs and stores
the result in the ASGI scope's ``state``; routes and other routers read it through
the FastAPI dependencies here instead of looking at tokens themselves::

    router = APIRouter(dependencies=[Depends(require_admin)])

    @router.get("/whoami")
    def whoami(principal: Annotated[Principal, Depends(current_principal)]) -> ...
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Final

from fastapi import Request

from threadline.server.auth.roles import ANONYMOUS, Principal, Role
from threadline.server.errors import Forbidden, Unauthorized

PRINCIPAL_STATE_KEY: Final = "threadline_principal"


def store_principal(scope: MutableMapping[str, Any], principal: Principal) -> None:
    scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal


def principal_of(scope: MutableMapping[str, Any]) -> Principal | None:
    found = scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
    return found if isinstance(found, Principal) else None


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: who is asking; a request the middleware never saw is refused."""
    principal = principal_of(request.scope)
    if principal is None:
        # Fail closed: an app wired without the middleware must not serve anyone.
        raise Unauthorized("this request was not authenticated")
    return principal


def require_role(role: Role) -> Callable[[Request], Principal]:
    """FastAPI dependency factory: the principal, if its role allows ``role``, else 403."""

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if not principal.role.allows(role):
            raise Forbidden(f"a {principal.role.value} token may not do this; it needs {role}")
        return principal

    return dependency


require_admin: Final = require_role(Role.ADMIN)
require_viewer: Final = require_role(Role.VIEWER)


def client_key(request: Request) -> str:
    """Whom ingest counts a request against for its rate: the token's name.

    With no tokens every request is the anonymous principal, so all share one rate.
    """
    principal = principal_of(request.scope)
    return principal.name if principal is not None else ANONYMOUS.name

"""Access control: tokens with roles, who may do what, and what viewers see masked.

``install_access_control(app, settings)`` is the one call ``create_app`` makes; the
rest is for routers that want to know who is asking (``current_principal``) or to
insist on a role themselves (``require_admin``, ``require_viewer``). See
docs/security.md for the operator's view.
"""

from threadline.server.auth.context import (
    client_key,
    current_principal,
    require_admin,
    require_role,
    require_viewer,
)
from threadline.server.auth.exposure import check_exposure, is_loopback
from threadline.server.auth.install import install_access_control
from threadline.server.auth.masking import MASK, SensitiveFields
from threadline.server.auth.roles import Principal, Role, required_role
from threadline.server.auth.tokens import TokenTable, load_tokens

__all__ = [
    "MASK",
    "Principal",
    "Role",
    "SensitiveFields",
    "TokenTable",
    "check_exposure",
    "client_key",
    "current_principal",
    "install_access_control",
    "is_loopback",
    "load_tokens",
    "require_admin",
    "require_role",
    "require_viewer",
    "required_role",
]

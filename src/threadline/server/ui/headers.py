"""Headers every UI response carries: a strict Content-Security-Policy and friends.

Span names, service names and attribute values are whatever instrumented services
sent, so the UI treats them as hostile text: templates autoescape, and scripts only
ever set ``textContent``. The policy is the second wall: even if markup slipped
through, no inline script, inline event handler or script from another origin runs,
and the page cannot be framed or send data anywhere but back to this server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # Bars and colours are set through the CSSOM (element.style.width = ...), which
        # a policy without 'unsafe-inline' still allows; style attributes in markup are not.
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

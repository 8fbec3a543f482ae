"""The alert-delivery part of ``threadline doctor``: are the server's receivers healthy?

It asks the server at the SDK's ``endpoint`` for ``GET /api/alerts/receivers`` with
the token in ``THREADLINE_TOKEN`` (a viewer or admin token). A receiver that failed
since its last success, or dropped alerts, is a warning naming its last error; it is
never a problem, since tracing works regardless. A server that cannot be asked
(unreachable, no token, an older release) gives one line of information saying why:
the endpoint check above already reports an unreachable server.
"""

from __future__ import annotations

from typing import Any, Final

from threadline.cli.client import TOKEN_ENV, ApiError, ServerUnreachable, ThreadlineClient
from threadline.cli.doctor import Finding

SECTION: Final = "Alert delivery (server)"
RECEIVERS_PATH: Final = "/alerts/receivers"
TIMEOUT_S: Final = 5.0


def alert_delivery_findings(endpoint: str) -> list[Finding]:
    url = endpoint.rstrip("/") + "/api" + RECEIVERS_PATH
    try:
        answer = ThreadlineClient(endpoint, timeout_s=TIMEOUT_S).get(RECEIVERS_PATH)
    except ServerUnreachable:
        return [Finding(SECTION, url, "not checked: the server does not answer")]
    except ApiError as exc:
        if exc.status_code in (401, 403):
            detail = f"not checked: the server wants a viewer token in {TOKEN_ENV}"
        elif exc.status_code == 404:
            detail = "not checked: this server has no alert delivery (an older release)"
        else:
            detail = f"not checked: {exc.message}"
        return [Finding(SECTION, url, detail)]
    receivers: list[dict[str, Any]] = list(answer.get("receivers", []))
    if not receivers:
        return [
            Finding(
                SECTION,
                "receivers",
                "none configured (alert_webhook_urls, alertmanager_url, slack_webhook_url)",
            )
        ]
    return [_finding(r) for r in receivers]


def _finding(receiver: dict[str, Any]) -> Finding:
    subject = f"{receiver['name']} ({receiver['url']})"
    counts = (
        f"{receiver['sent']} sent, {receiver['retries']} retried, {receiver['failed']} failed, "
        f"{receiver['dropped']} dropped"
    )
    if receiver.get("healthy"):
        return Finding(SECTION, subject, counts)
    detail = counts + (f"; last error: {receiver['last_error']}" if receiver["last_error"] else "")
    advice = (
        "check that the receiver is up and accepts the URL the server was given; the "
        "server's log names each failed send"
    )
    return Finding(SECTION, subject, detail, advice, "warning")

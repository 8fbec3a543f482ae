"""Where alerts go: one ``Receiver`` per configured URL, each knowing its body shape.

- ``webhook``: each URL of ``alert_webhook_urls`` gets Alertmanager webhook payloads
  (version 4), one POST per group of alerts;
- ``alertmanager``: ``alertmanager_url`` gets ``POST /api/v2/alerts``, and firing
  alerts are re-sent every ``alertmanager_resend_s`` until they resolve (an
  Alertmanager forgets an alert that is not re-sent before its ``endsAt``);
- ``slack``: ``slack_webhook_url`` gets one readable message per batch of alerts.

A URL that is not ``http(s)://host...`` is a ``ConfigError`` naming the setting,
raised when the server starts. Receivers show their URL only as scheme and host
(``display_url``): Slack webhook URLs are secrets.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from threadline.server.alerting.delivery import formats, slack
from threadline.server.alerting.notice import AlertNotice
from threadline.settings import ConfigError, ServerSettings

ALERTS_PATH: Final = "/api/v2/alerts"
RECEIVER_NAME: Final = "threadline"
NS_PER_S: Final = 1_000_000_000


class ReceiverKind(enum.StrEnum):
    WEBHOOK = "webhook"
    ALERTMANAGER = "alertmanager"
    SLACK = "slack"


# notices, now (Unix ns) -> the JSON bodies to POST, in order
Render = Callable[[Sequence[AlertNotice], int], list[object]]


@dataclass(frozen=True, slots=True)
class Receiver:
    """One destination: its name (for status and logs), kind, URL and body shape.

    ``resend_s`` > 0 makes the worker re-send firing alerts at that interval.
    """

    name: str
    kind: ReceiverKind
    url: str
    render: Render
    resend_s: float = 0.0

    @property
    def display_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def check_url(url: str, setting_name: str) -> str:
    """``url`` stripped, if it is an absolute http(s) URL; else ``ConfigError``."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{setting_name}: {url!r} is not an http:// or https:// URL with a host")
    return url


def webhook(url: str, *, name: str, external_url: str) -> Receiver:
    def render(notices: Sequence[AlertNotice], now_ns: int) -> list[object]:
        return list(
            formats.webhook_payloads(notices, receiver=RECEIVER_NAME, external_url=external_url)
        )

    return Receiver(name, ReceiverKind.WEBHOOK, url, render)


def alertmanager(base_url: str, *, resend_s: float) -> Receiver:
    if resend_s <= 0:
        raise ConfigError(f"alertmanager_resend_s must be more than 0, got {resend_s}")
    interval_ns = int(resend_s * NS_PER_S)

    def render(notices: Sequence[AlertNotice], now_ns: int) -> list[object]:
        return [formats.alertmanager_alerts(notices, now_ns=now_ns, resend_interval_ns=interval_ns)]

    url = base_url.rstrip("/") + ALERTS_PATH
    return Receiver("alertmanager", ReceiverKind.ALERTMANAGER, url, render, resend_s=resend_s)


def slack_webhook(url: str) -> Receiver:
    def render(notices: Sequence[AlertNotice], now_ns: int) -> list[object]:
        return [slack.message(notices)]

    return Receiver("slack", ReceiverKind.SLACK, url, render)


def external_url_of(settings: ServerSettings) -> str:
    """Where people reach this server: ``external_url``, else the address it listens on."""
    if settings.external_url:
        return check_url(settings.external_url, "external_url").rstrip("/")
    scheme = "https" if settings.serves_tls else "http"
    return f"{scheme}://{settings.host}:{settings.port}"


def from_settings(settings: ServerSettings) -> list[Receiver]:
    """Every receiver the settings name, in a stable order; ``ConfigError`` on a bad URL."""
    external = external_url_of(settings)
    receivers: list[Receiver] = []
    urls = [u for u in settings.alert_webhook_urls.split(",") if u.strip()]
    for index, raw in enumerate(urls, start=1):
        url = check_url(raw, "alert_webhook_urls")
        receivers.append(webhook(url, name=f"webhook-{index}", external_url=external))
    if settings.alertmanager_url.strip():
        base = check_url(settings.alertmanager_url, "alertmanager_url")
        receivers.append(alertmanager(base, resend_s=settings.alertmanager_resend_s))
    if settings.slack_webhook_url.strip():
        receivers.append(slack_webhook(check_url(settings.slack_webhook_url, "slack_webhook_url")))
    return receivers

"""Alertmanager's two wire shapes, built from ``AlertNotice``s (pure: no I/O).

- **Webhook payload, version 4**: what an Alertmanager POSTs to a ``webhook_config``
  receiver, so anything that accepts Alertmanager webhooks (PagerDuty's and Opsgenie's
  bridges, chat bots, ticket tools) accepts Threadline's. Fields, per the Alertmanager
  documentation ("webhook_config"): ``version``, ``groupKey``, ``truncatedAlerts``,
  ``status``, ``receiver``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``,
  ``externalURL`` and ``alerts[]`` of ``status``, ``labels``, ``annotations``,
  ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``.
- **``POST /api/v2/alerts``**: what Prometheus sends to an Alertmanager, a list of
  ``{labels, annotations, startsAt, endsAt, generatorURL}``. Like Prometheus, a firing
  alert's ``endsAt`` lies a few re-send intervals ahead, so the Alertmanager resolves
  it by itself if Threadline stops re-sending; a resolved alert carries its real end.

Times are RFC 3339 in UTC. Example traces ride in the annotations (``example_traces``,
one trace page URL a line, and ``example_trace_ids``), since both shapes carry only
string maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from threadline.server.alerting.notice import AlertNotice, AlertStatus

WEBHOOK_VERSION: Final = "4"
# Alertmanager's zero time: what its webhook sends as ``endsAt`` of a firing alert.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"
# Alerts of one webhook payload share these labels (Alertmanager's ``group_by``); an
# SLO's alerts carry ``slo``, a scheduled drill's ``drill``.
GROUP_BY: Final = ("alertname", "slo", "drill")
# A firing alert sent to an Alertmanager ends this many re-send intervals ahead unless
# re-sent; Prometheus uses 4 (``resendDelay`` × 4) for the same reason.
ENDS_AFTER_RESENDS: Final = 4

Json = dict[str, object]


def rfc3339(ns: int) -> str:
    """Unix nanoseconds as RFC 3339 in UTC with milliseconds, as Alertmanager writes them."""
    moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def annotations_of(notice: AlertNotice) -> dict[str, str]:
    """The notice's annotations plus its example traces (their ids and page URLs)."""
    merged = dict(notice.annotations)
    if notice.example_traces:
        merged.setdefault("example_trace_ids", ",".join(t.trace_id for t in notice.example_traces))
        merged.setdefault("example_traces", "\n".join(t.url for t in notice.example_traces))
    return merged


def _webhook_alert(notice: AlertNotice) -> Json:
    resolved = notice.status is AlertStatus.RESOLVED and notice.ends_at_ns is not None
    return {
        "status": notice.status.value,
        "labels": dict(notice.labels),
        "annotations": annotations_of(notice),
        "startsAt": rfc3339(notice.starts_at_ns),
        "endsAt": rfc3339(notice.ends_at_ns) if resolved and notice.ends_at_ns else ZERO_TIME,
        "generatorURL": notice.generator_url,
        "fingerprint": notice.fingerprint,
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every map has (Alertmanager's ``commonLabels``/``commonAnnotations``)."""
    if not maps:
        return {}
    first, rest = maps[0], maps[1:]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in rest)}


def _group_key(receiver: str, group_labels: Mapping[str, str]) -> str:
    inner = ",".join(f"{k}={_quoted(v)}" for k, v in sorted(group_labels.items()))
    return f"{{}}/{{receiver={_quoted(receiver)}}}:{{{inner}}}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def webhook_payloads(
    notices: Sequence[AlertNotice], *, receiver: str, external_url: str
) -> list[Json]:
    """One version-4 webhook payload per group of notices sharing ``GROUP_BY`` labels."""
    groups: dict[tuple[str, ...], list[AlertNotice]] = {}
    for notice in notices:
        key = tuple(notice.labels.get(name, "") for name in GROUP_BY)
        groups.setdefault(key, []).append(notice)
    payloads: list[Json] = []
    for key, members in groups.items():
        group_labels = {name: value for name, value in zip(GROUP_BY, key, strict=True) if value}
        firing = any(n.status is AlertStatus.FIRING for n in members)
        alerts = [_webhook_alert(n) for n in members]
        payloads.append(
            {
                "version": WEBHOOK_VERSION,
                "groupKey": _group_key(receiver, group_labels),
                "truncatedAlerts": 0,
                "status": AlertStatus.FIRING.value if firing else AlertStatus.RESOLVED.value,
                "receiver": receiver,
                "groupLabels": group_labels,
                "commonLabels": _common([n.labels for n in members]),
                "commonAnnotations": _common([annotations_of(n) for n in members]),
                "externalURL": external_url,
                "alerts": alerts,
            }
        )
    return payloads


def alertmanager_alerts(
    notices: Sequence[AlertNotice], *, now_ns: int, resend_interval_ns: int
) -> list[Json]:
    """The body of ``POST /api/v2/alerts``: one postable alert per notice."""
    firing_end = now_ns + ENDS_AFTER_RESENDS * resend_interval_ns
    body: list[Json] = []
    for notice in notices:
        resolved = notice.status is AlertStatus.RESOLVED
        ends_ns = (notice.ends_at_ns or now_ns) if resolved else firing_end
        body.append(
            {
                "labels": dict(notice.labels),
                "annotations": annotations_of(notice),
                "startsAt": rfc3339(notice.starts_at_ns),
                "endsAt": rfc3339(ends_ns),
                "generatorURL": notice.generator_url,
            }
        )
    return body

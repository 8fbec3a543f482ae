"""A Slack incoming-webhook message for an alert: ``text`` plus Block Kit ``blocks``.

``text`` is what notifications and clients without blocks show; the blocks lay out
the same facts: a header, the summary, the labels, every annotation (burn figures
among them), a link to the SLO page and one to each example trace.

Every value comes from outside (service and operation names are whatever spans
said), so every value is escaped before it reaches Slack's markup, as Slack's
"Formatting text for app surfaces" asks: ``&``, ``<`` and ``>`` become ``&amp;``,
``&lt;`` and ``&gt;``. Unescaped, a label value ``<!channel>`` would notify a whole
channel and ``<https://evil|click>`` would draw a link. Control characters (terminal
escapes, NUL) are replaced with U+FFFD and line breaks in a one-line value with a
space; each value is cut to ``MAX_VALUE_CHARS``. Link targets are percent-encoded
where Slack's link syntax would end them (``|``, ``<``, ``>``, spaces).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

from threadline.server.alerting.notice import AlertNotice, AlertStatus, ExampleTrace

# Slack cuts a section's text at 3,000 characters and a header at 150.
MAX_VALUE_CHARS: Final = 500
MAX_HEADER_CHARS: Final = 150
MAX_SECTION_CHARS: Final = 3000
# Annotations shown as the message's prose rather than in the list of figures.
PROSE_KEYS: Final = ("summary", "description")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS: Final = re.compile(r"[\r\n\t]+")
# Labels the headline already shows.
_IN_HEADLINE: Final = frozenset({"alertname", "slo", "drill", "severity"})
_EMOJI: Final = {AlertStatus.FIRING: ":rotating_light:", AlertStatus.RESOLVED: ":white_check_mark:"}

Json = dict[str, object]


def escape(value: str, *, one_line: bool = True, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` safe inside Slack mrkdwn: no markup, no control characters, bounded."""
    if one_line:
        value = _LINE_BREAKS.sub(" ", value)
    value = _CONTROL.sub("\ufffd", value)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Text for a ``plain_text`` object: Slack draws no markup there, but it decodes the
    three entities in every text field, so the same escaping keeps a value literal."""
    return escape(value, limit=limit)


def link(url: str, label: str) -> str:
    """A Slack link ``<url|label>`` whose url and label cannot break out of it."""
    target = quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")
    return f"<{target}|{escape(label)}>"


def _headline(notice: AlertNotice) -> str:
    name = notice.labels.get("alertname", "alert")
    slo = notice.labels.get("slo", "")
    severity = notice.labels.get("severity", "")
    parts = [f"[{notice.status.value.upper()}]", name]
    drill = notice.labels.get("drill", "")
    if slo and slo != name:
        parts.append(f"— SLO {slo}")
    elif drill:
        parts.append(f"— drill {drill}")
    if severity:
        parts.append(f"({severity})")
    return " ".join(parts)


def message(notices: Sequence[AlertNotice]) -> Json:
    """One Slack message for the notices (usually one): ``text`` and ``blocks``."""
    texts: list[str] = []
    blocks: list[Json] = []
    for notice in notices:
        text, notice_blocks = _one(notice)
        texts.append(text)
        if blocks:
            blocks.append({"type": "divider"})
        blocks.extend(notice_blocks)
    return {"text": "\n\n".join(texts), "blocks": blocks}


def _one(notice: AlertNotice) -> tuple[str, list[Json]]:
    headline = _headline(notice)
    emoji = _EMOJI[notice.status]
    summary = " ".join(notice.annotations.get(key, "") for key in PROSE_KEYS).strip()
    figures = [
        f"*{escape(key)}*: {escape(value)}"
        for key, value in sorted(notice.annotations.items())
        if key not in PROSE_KEYS
    ]
    labels = [f"*{escape(k)}*: {escape(v)}" for k, v in sorted(notice.labels.items())]
    links = [link(notice.generator_url, "SLO page")] if notice.generator_url else []
    traces = [link(t.url, _trace_label(t)) for t in notice.example_traces]
    lines = [f"{emoji} *{escape(headline)}*"]
    if summary:
        lines.append(escape(summary))
    lines.extend(
        f"*{escape(k)}*: {escape(v)}"
        for k, v in sorted(notice.labels.items())
        if k not in _IN_HEADLINE
    )
    lines.extend(figures)
    if links:
        lines.append(" · ".join(links))
    if traces:
        lines.append("Example traces: " + ", ".join(traces))
    text = "\n".join(lines)

    blocks: list[Json] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _plain(headline, MAX_HEADER_CHARS)},
        }
    ]
    if summary:
        blocks.append(_section(escape(summary, limit=MAX_SECTION_CHARS - 10)))
    if labels:
        # A section holds at most 10 fields.
        blocks.append({"type": "section", "fields": [_mrkdwn(line) for line in labels[:10]]})
    if figures:
        blocks.append(_section("\n".join(figures)))
    if links or traces:
        parts = list(links)
        if traces:
            parts.append("Example traces: " + ", ".join(traces))
        blocks.append(_section("\n".join(parts)))
    return text, blocks


def _trace_label(trace: ExampleTrace) -> str:
    """``4bf92f3577b34da6 812 ms, error``: enough of the id to tell traces apart."""
    facts = [f"{trace.duration_ms:.0f} ms"] if trace.duration_ms is not None else []
    if trace.error:
        facts.append("error")
    return trace.trace_id[:16] + (f" ({', '.join(facts)})" if facts else "")


def _mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text[:MAX_SECTION_CHARS]}


def _section(text: str) -> Json:
    return {"type": "section", "text": _mrkdwn(text)}

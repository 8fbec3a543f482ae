"""Rich renderings of the analysis answers: map, RED, slow requests, errors, propagation,
critical path, comparison and journey narrative.

Like ``render``, each function takes the API's JSON and returns something
``Console.print`` shows; every value from spans is wrapped in ``Text`` so that it
is printed literally, never read as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.text import Text

from threadline.cli.render import (
    ERROR_MARK,
    ERROR_STYLE,
    format_ms,
    format_start,
    plain_table,
    plural,
)

Json = Any
_SPARK: Final = " ▁▂▃▄▅▆▇█"
# Rows shown of a long list; the --json answer has them all.
MAX_ROWS: Final = 40


def service_map(answer: Json) -> RenderableType:
    """Services with their own traffic, then every caller → callee edge."""
    services = plain_table()
    for header in ("service", "requests", "errors", "p50", "p95", "p99"):
        services.add_column(header, justify="left" if header == "service" else "right")
    for node in answer["services"]:
        services.add_row(Text(node["name"], style="bold"), *_red_cells(node))
    table = plain_table()
    table.add_column("caller → callee", no_wrap=True)
    for header in ("calls", "errors", "p50", "p95", "p99"):
        table.add_column(header, justify="right")
    queues = Text()
    for edge in answer["edges"]:
        arrow = _ARROWS.get(edge["kind"], " → ")
        name = Text.assemble((edge["caller"], "bold"), arrow, (edge["callee"], "bold"))
        table.add_row(
            name,
            Text(str(edge["calls"])),
            _error_rate(edge["errors"], edge["error_rate"]),
            *_latency_cells(edge["latency_ms"], ("p50", "p95", "p99")),
        )
        dwell = edge["queue_dwell_ms"]
        if dwell:
            queues.append("\nqueue ")
            queues.append_text(name)
            queues.append(
                f": messages waited p50 {format_ms(dwell['p50'])}, p95 {format_ms(dwell['p95'])}"
                f", p99 {format_ms(dwell['p99'])}"
            )
    edges: RenderableType = table
    if not answer["edges"]:
        edges = Text("No calls between services in this window.", style="dim")
    heading = _window_heading("Service map", answer["window"])
    legend = Text(
        "⇢ message hop · ⇝ inferred call (a server span under another service's span)", style="dim"
    )
    return Group(heading, Text(), services, Text(), edges, queues, legend)


# How each edge kind of the map is drawn between caller and callee.
_ARROWS: Final = {"call": " → ", "message": " ⇢ ", "inferred": " ⇝ "}


def service_red(answer: Json) -> RenderableType:
    """A service's totals, its operations, and a sparkline of requests and p95 per bucket."""
    name = answer["service"] + (f" · {answer['operation']}" if answer["operation"] else "")
    heading = _window_heading(f"RED of {name}", answer["window"])
    totals = answer["totals"]
    summary = Text(
        f"{totals['requests']} requests ({totals['request_rate_per_s']:.2f}/s), "
        f"{totals['errors']} errors ({totals['error_rate']:.1%})"
    )
    if totals["latency_ms"]:
        lat = totals["latency_ms"]
        summary.append(
            f", p50 {format_ms(lat['p50'])}, p90 {format_ms(lat['p90'])}, "
            f"p95 {format_ms(lat['p95'])}, p99 {format_ms(lat['p99'])}"
        )
    table = plain_table()
    for header in ("operation", "requests", "errors", "p50", "p95", "p99"):
        table.add_column(header, justify="left" if header == "operation" else "right")
    for op in answer["operations"]:
        table.add_row(Text(op["operation"]), *_red_cells(op))
    buckets = answer["buckets"]
    lines: list[RenderableType] = [heading, summary, Text(), table]
    if buckets:
        size = format_ms(answer["bucket_ms"])
        lines.append(Text(f"\nper {size}: requests", style="bold"))
        lines.append(Text(_sparkline([b["requests"] for b in buckets])))
        lines.append(Text("p95 latency", style="bold"))
        lines.append(Text(_sparkline([(b["latency_ms"] or {}).get("p95") or 0.0 for b in buckets])))
    return Group(*lines)


def slow_requests(answer: Json) -> RenderableType:
    """Where the slow requests' time goes, and what they have in common."""
    target = _target(answer)
    threshold = answer["threshold_ms"]
    heading = _window_heading(f"Slow requests of {target}", answer["window"])
    if not answer["slow_traces"]:
        return Group(heading, Text("No requests in this window.", style="dim"))
    heading.append(
        f"\n{answer['slow_traces']} slow traces (at or above p{answer['percentile']:g} = "
        f"{format_ms(threshold)}) against {answer['baseline_traces']} others",
    )
    measure = "critical path" if answer["measure"] == "critical_path" else "self time"
    growth = plain_table()
    for header in ("where the time grows", "slow", "others", "growth"):
        growth.add_column(header, justify="left" if header.startswith("where") else "right")
    path = answer["measure"] == "critical_path"
    # Growth that rounds to nothing at the microsecond is noise, not a finding.
    for row in [r for r in answer["operations"] if r["growth_ms"] >= 0.001][:MAX_ROWS]:
        slow = row["slow_critical_path_ms"] if path else row["slow_self_ms"]
        base = row["baseline_critical_path_ms"] if path else row["baseline_self_ms"]
        growth.add_row(
            _operation(row),
            Text(format_ms(slow)),
            Text(format_ms(base)),
            Text.assemble(
                _tied(row),
                (f"+{format_ms(row['growth_ms'])}", "bold"),
                _margin(format_ms(margin) if (margin := row.get("growth_margin_ms")) else None),
            ),
        )
    # The means are over the traces whose critical paths were walked, or the whole sample
    # (a server older than these fields says neither).
    over = (answer.get("slow_walked"), answer.get("baseline_walked"))
    if not path:
        over = _sampled(answer, "slow")
    counted = "" if None in over else f", over {over[0]:,} slow and {over[1]:,} other traces"
    note = Text(f"mean {measure} per trace{counted}", style="dim")
    return Group(
        heading,
        *_sample_note(answer, "slow"),
        *_margins_note(answer),
        Text(),
        growth if answer["operations"] else Text("No operation grows.", style="dim"),
        note,
        Text(),
        _attribute_table(answer, "slow"),
        Text(),
        _examples(answer),
    )


def error_hotspots(answer: Json) -> RenderableType:
    """Where failed requests' errors start, and what the failed requests have in common."""
    heading = _window_heading(f"Failed requests of {_target(answer)}", answer["window"])
    heading.append(f"\n{answer['failed_traces']} failed against {answer['baseline_traces']} ok")
    if not answer["failed_traces"]:
        return Group(heading, Text("No failed requests in this window.", style="dim"))
    table = plain_table()
    for header in ("where errors start", "failed", "ok", "score"):
        table.add_column(header, justify="left" if header.startswith("where") else "right")
    for row in answer["operations"][:MAX_ROWS]:
        table.add_row(
            _operation(row, style=ERROR_STYLE),
            Text(f"{row['failed_share']:.0%} ({row['failed_traces']})"),
            Text(f"{row['baseline_share']:.0%} ({row['baseline_traces']})"),
            Text.assemble(
                _tied(row),
                (f"{row['score']:+.2f}", "bold"),
                _margin(f"{margin:.3f}" if (margin := row.get("score_margin")) else None),
            ),
        )
    attributes = _attribute_table(answer, "failed")
    return Group(
        heading,
        *_sample_note(answer, "failed"),
        *_margins_note(answer),
        Text(),
        table,
        Text(),
        attributes,
        Text(),
        _examples(answer),
    )


def _margin(shown: str | None) -> tuple[str, str]:
    """A figure's 95% margin, dim; nothing for a figure counted over its whole group."""
    return (f" ±{shown}", "dim") if shown else ("", "")


# What ``≈`` says of a row.
TIED: Final = "the sample cannot tell from the one above (a full count may swap them)"


def _tied(row: Json) -> tuple[str, str]:
    """ "≈ " before a figure the sample cannot tell from the row above's."""
    return ("≈ ", "dim") if row.get("tied") else ("", "")


def _sampled(answer: Json, focus: str) -> tuple[int | None, int | None]:
    """Traces of each group (focus, baseline) the shares were counted over."""
    return answer.get(f"{focus}_sample"), answer.get("baseline_sample")


def _sample_note(answer: Json, focus: str) -> list[Text]:
    """A line saying the shares below come from a sample, when a group was larger than
    the most a sample holds (as the service page says); no line otherwise."""
    taken = _sampled(answer, focus)
    groups = (answer[f"{focus}_traces"], answer["baseline_traces"])
    limit = answer.get("sample_limit")
    if limit is None or None in taken:
        return []
    if not any(limit <= n < of for n, of in zip(taken, groups, strict=True)):
        return []
    line = f"shares over a sample: {taken[0]:,} {focus} and {taken[1]:,} other traces;"
    return [Text(f"{line} the counts are exact", style="dim")]


def _margins_note(answer: Json) -> list[Text]:
    """What ``±`` and ``≈`` mean, when a ranked figure has a margin or a tie (a group
    sampled, or its critical paths walked in part); no line otherwise."""
    rows = [*answer["operations"], *answer["attributes"]]
    if not any(row.get("tied") or _margin_of(row) for row in rows):
        return []
    return [Text(f"± is a figure's 95% margin, ≈ a row {TIED}", style="dim")]


def _margin_of(row: Json) -> float:
    return float(row.get("growth_margin_ms") or row.get("score_margin") or 0.0)


def propagation(answer: Json) -> RenderableType:
    """Services that lose their callers' context, orphans, and broken message hops."""
    heading = _window_heading("Propagation health", answer["window"])
    if answer["healthy"]:
        heading.append("\nNo broken hop: every called service received its caller's context.")
        return heading
    parts: list[RenderableType] = [heading]
    broken = [s for s in answer["services"] if s["unparented"]]
    if broken:
        table = plain_table()
        for header in ("service · operation without parent", "unparented", "share", "example"):
            table.add_column(
                header, justify="right" if header in ("unparented", "share") else "left"
            )
        for service in broken:
            table.add_row(
                Text(service["service"], style="bold"),
                Text(f"{service['unparented']}/{service['entry_spans']}"),
                Text(f"{service['unparented_share']:.1%}", style=ERROR_STYLE),
                Text(service["example_trace_id"] or ""),
            )
            for op in service["operations"]:
                table.add_row(
                    Text(f"  {op['operation']}"),
                    Text(f"{op['unparented']}/{op['entry_spans']}"),
                    Text(f"{op['unparented_share']:.1%}"),
                    Text(op["example_trace_id"] or "", style="dim"),
                )
        parts += [Text(), table]
    hops = [h for h in answer["message_hops"] if h["broken"]]
    if hops:
        table = plain_table()
        for header in ("message hop", "broken", "share", "producer trace → consumer trace"):
            table.add_column(header, justify="right" if header in ("broken", "share") else "left")
        for hop in hops:
            table.add_row(
                Text(f"{hop['producer']} ⇢ {hop['consumer']} ({hop['destination'] or '?'})"),
                Text(f"{hop['broken']}/{hop['messages']}"),
                Text(f"{hop['broken_share']:.1%}", style=ERROR_STYLE),
                Text(
                    f"{hop['example_producer_trace_id']}\n→ {hop['example_consumer_trace_id']}",
                    style="dim",
                ),
            )
        parts += [Text(), table]
    if answer["orphans"]:
        orphans = ", ".join(f"{o['service']} ({o['orphan_spans']})" for o in answer["orphans"])
        parts += [Text(), Text(f"spans whose parent is missing: {orphans}", style="yellow")]
    return Group(*parts)


def critical_path(answer: Json) -> RenderableType:
    """The path's segments in time order, then each service's share of it."""
    summary = answer["summary"]
    heading = Text.assemble(("Critical path of ", "bold"), (answer["trace_id"], "bold"))
    heading.append(f"\n{summary['root_operation']} ({summary['root_service']}), ")
    heading.append(f"{format_ms(answer['duration_ms'])} on the path")
    start = answer["start_ns"]
    table = plain_table()
    for header in ("at", "duration", "service", "operation"):
        table.add_column(header, justify="right" if header in ("at", "duration") else "left")
    for segment in answer["segments"][: MAX_ROWS * 2]:
        kind = segment["kind"]
        label = Text(segment["operation"])
        if kind != "span":
            label = Text(f"{kind}: {segment['operation']}", style="dim")
        table.add_row(
            Text(f"+{format_ms((segment['start_ns'] - start) / 1e6)}", style="dim"),
            Text(format_ms(segment["duration_ms"])),
            Text(segment["service"], style="bold"),
            label,
        )
    return Group(heading, Text(), table, Text(), _shares_line(answer["shares"]))


def comparison(answer: Json) -> RenderableType:
    """Operations of b against a, largest difference first."""
    diff = answer["duration_diff_ms"]
    heading = Text.assemble(
        ("Trace b ", "bold"),
        answer["candidate_trace_id"],
        (" against a ", "bold"),
        answer["baseline_trace_id"],
    )
    heading.append(
        f"\n{format_ms(answer['candidate_duration_ms'])} against "
        f"{format_ms(answer['baseline_duration_ms'])}: {_signed_ms(diff)}"
    )
    table = plain_table()
    for header in ("service · operation", "a", "b", "difference", "self time diff"):
        table.add_column(header, justify="left" if header.startswith("service") else "right")
    for row in answer["operations"][:MAX_ROWS]:
        a, b = row["baseline"], row["candidate"]
        label = _operation(row)
        if not a["count"] or not b["count"]:
            label.append(" (only in a)" if not b["count"] else " (only in b)", style="yellow")
        table.add_row(
            label,
            Text(f"{format_ms(a['duration_ms'])} ×{a['count']}" if a["count"] else "–"),
            Text(f"{format_ms(b['duration_ms'])} ×{b['count']}" if b["count"] else "–"),
            Text(_signed_ms(row["duration_diff_ms"]), style="bold"),
            Text(_signed_ms(row["self_time_diff_ms"]), style="dim"),
        )
    return Group(heading, Text(), table)


def narrative(story: Json) -> RenderableType:
    """The journey as sentences: steps that failed and where, what held it up, where it ended."""
    lines = [Text("What happened", style="bold")]
    steps = story["steps"]
    failed = [step for step in steps if step["failed"]]
    summary = Text(
        f"{plural(len(steps), 'step')} over {format_ms(story['duration_ms'])}, "
        f"{format_ms(story['think_time_ms'])} of it thinking"
    )
    if failed:
        summary.append(f"; {plural(len(failed), 'step')} failed", style=ERROR_STYLE)
    lines.append(summary)
    for step in failed:
        line = Text(f"{ERROR_MARK} {step['entry_operation']} at {format_start(step['start_ns'])}")
        line.stylize(ERROR_STYLE)
        error = step["error"]
        if error:
            line.append(f": started in {error['service']} · {error['operation']}")
            if error["message"]:
                line.append(f" ({error['message']})", style="dim")
        lines.append(line)
    if story["top_service"]:
        lines.append(Text(f"most time on the critical path: {story['top_service']}"))
        lines.append(_shares_line(story["service_shares"]))
    last = steps[-1] if steps else None
    if last is not None:
        ended = Text(f"ended with {last['entry_operation']}")
        if story["stopped_after_failure"]:
            ended.append(" — which failed: the user stopped after a failure", style=ERROR_STYLE)
        lines.append(ended)
    return Group(*lines)


def _red_cells(row: Json) -> list[Text]:
    return [
        Text(str(row["requests"])),
        _error_rate(row["errors"], row["error_rate"]),
        *_latency_cells(row["latency_ms"], ("p50", "p95", "p99")),
    ]


def _latency_cells(latency: Json | None, keys: Sequence[str]) -> list[Text]:
    if latency is None:
        return [Text("–") for _ in keys]
    return [Text(format_ms(latency[key])) for key in keys]


def _error_rate(errors: int, rate: float) -> Text:
    if not errors:
        return Text("0", style="dim")
    return Text(f"{errors} ({rate:.1%})", style=ERROR_STYLE)


def _attribute_table(answer: Json, focus: str) -> RenderableType:
    rows = answer["attributes"][:MAX_ROWS]
    concentrations = answer.get("concentrations") or []
    unranked = answer.get("not_ranked") or []
    notes = Text(style="dim")
    for people in concentrations:
        values = people["values"]  # a mask (one string) for a viewer without the right
        shown = (
            ", ".join(values[:3]) + (", …" if people["count"] > 3 else "")
            if isinstance(values, list)
            else str(values)
        )
        notes.append("\n")
        notes.append(people["key"], style="bold")
        notes.append(
            f": {focus} requests concentrated in {people['count']} {people['noun']} ({shown}):"
            f" {people[f'{focus}_share']:.0%} of {focus} against"
            f" {people['baseline_share']:.0%} of the others"
        )
    if unranked:
        left_out = ", ".join(f"{row['key']} ({row['reason']})" for row in unranked)
        notes.append(f"\nnot ranked: {left_out}", style="dim")
    if not rows:
        empty = Text(f"No attribute value stands out among the {focus} requests.", style="dim")
        return Group(empty, notes) if notes else empty
    table = plain_table()
    for header in (f"what {focus} requests have in common", focus, "others", "lift"):
        table.add_column(header, justify="left" if header.startswith("what") else "right")
    for row in rows:
        alike = row.get("alike") or []
        table.add_row(
            Text.assemble(
                (row["key"], "bold"),
                "=",
                row["value"],
                (f" (+{len(alike)} alike)" if alike else "", "dim"),
            ),
            Text(f"{row[f'{focus}_share']:.0%} ({row[f'{focus}_traces']})"),
            Text(f"{row['baseline_share']:.0%} ({row['baseline_traces']})"),
            Text.assemble(_tied(row), f"×{row['lift']:.1f}"),
        )
    return Group(table, notes) if notes else table


def _examples(answer: Json) -> Text:
    ids = answer["example_trace_ids"]
    if not ids:
        return Text()
    return Text("examples: " + ", ".join(ids), style="dim")


def _operation(row: Json, style: str = "") -> Text:
    return Text.assemble((row["service"], "bold"), " · ", (row["operation"], style))


def _target(answer: Json) -> str:
    if answer["service"] is None:
        return "all traces"
    operation = f" · {answer['operation']}" if answer["operation"] else ""
    return f"{answer['service']}{operation}"


def _window_heading(title: str, window: Json) -> Text:
    heading = Text(title, style="bold")
    heading.append(
        f"  {format_start(window['start_ns'])} – {format_start(window['end_ns'])} UTC"
        f" ({format_ms(window['duration_ms'])})",
        style="dim",
    )
    return heading


def _shares_line(shares: Sequence[Json]) -> Text:
    line = Text("share of the path: ", style="bold")
    for index, share in enumerate(shares[:8]):
        if index:
            line.append(", ")
        name = share["name"] + (" (queue)" if share["kind"] == "queue" else "")
        line.append(f"{name} {share['fraction']:.0%}")
    return line


def _signed_ms(ms: float) -> str:
    return ("+" if ms > 0 else "−" if ms < 0 else "±") + format_ms(abs(ms))


def _sparkline(values: Sequence[float]) -> str:
    top = max(values, default=0) or 1
    return "".join(_SPARK[round(value / top * (len(_SPARK) - 1))] for value in values)

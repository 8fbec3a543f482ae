"""Rich renderings of API answers: the trace waterfall and the list tables.

Every function takes the JSON the API returned (docs/server.md, "REST API") and
returns something ``rich.console.Console.print`` shows. Values from spans are
always wrapped in ``Text``: a span named ``[red]x`` is a name, not Rich markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

Json = Mapping[str, Any]

# Narrowest timeline worth drawing; below it the proportions are unreadable.
MIN_BAR_CHARS: Final = 10
# Widest the span-name column grows before long names fold onto a second line.
MAX_NAME_CHARS: Final = 60
_PALETTE: Final = ("cyan", "green", "magenta", "blue", "yellow", "bright_cyan", "bright_green")
ERROR_STYLE: Final = "bold red"
ERROR_MARK: Final = "✗"


def waterfall(trace: Json, width: int) -> RenderableType:
    """The trace as a tree of spans, each with a bar placed on the trace's timeline."""
    summary = trace["summary"]
    spans: Sequence[Json] = trace["spans"]
    colours = _service_colours(s["service"] for s in spans)
    trace_start = min((s["start_ns"] for s in spans), default=0)
    trace_end = max((s["end_ns"] for s in spans), default=0)

    labels = [_span_label(span) for span in spans]
    services = [Text(s["service"], style=colours[s["service"]]) for s in spans]
    durations = [Text(format_ms(s["duration_ms"])) for s in spans]
    self_times = [Text(format_ms(s["self_time_ms"]), style="dim") for s in spans]
    name_width = min(MAX_NAME_CHARS, _column_width("span", labels))
    fixed = [_column_width(h, c) for h, c in (("service", services), ("duration", durations))]
    fixed.append(_column_width("self", self_times))
    bar_width = max(MIN_BAR_CHARS, width - name_width - sum(fixed) - _overhead(columns=5))

    table = plain_table()
    table.add_column("span", width=name_width, overflow="fold")
    table.add_column("service", width=fixed[0], no_wrap=True)
    table.add_column("timeline", width=bar_width, no_wrap=True)
    table.add_column("duration", width=fixed[1], justify="right", no_wrap=True)
    table.add_column("self", width=fixed[2], justify="right", no_wrap=True)
    for index, span in enumerate(spans):
        style = ERROR_STYLE if span["status"] == "error" else colours[span["service"]]
        bar = _bar(span["start_ns"], span["end_ns"], trace_start, trace_end, bar_width, style)
        table.add_row(labels[index], services[index], bar, durations[index], self_times[index])
    parts: list[RenderableType] = [_trace_heading(summary), Text(), table, Text()]
    parts.append(_self_time_line(trace, colours))
    parts.extend(trace_notes(trace))
    return Group(*parts)


def trace_notes(trace: Json) -> list[Text]:
    """Where the trace's error started, whether it is complete, and clock-skew fix-ups."""
    notes: list[Text] = []
    origin = (trace.get("errors") or {}).get("origin")
    if origin:
        note = Text("error started in ", style=ERROR_STYLE)
        note.append(f"{origin['service']} · {origin['operation']}", style=ERROR_STYLE)
        detail = " ".join(x for x in (origin.get("exception_type"), origin.get("message")) if x)
        if detail:
            note.append(f": {detail}")
        passed_on = origin.get("propagated_by") or []
        if passed_on:
            chain = ", ".join(f"{s['service']} · {s['operation']}" for s in passed_on)
            note.append(f"\npassed on by {chain}", style="dim")
        notes.append(note)
    completeness = trace.get("completeness")
    if completeness and not completeness["complete"]:
        why = []
        if completeness["orphan_span_ids"]:
            why.append(f"{plural(len(completeness['orphan_span_ids']), 'span')} without parent")
        if completeness["settling"]:
            why.append("spans may still be arriving")
        notes.append(Text(f"incomplete: {'; '.join(why)}", style="yellow"))
    shifts = trace.get("skew_adjustments") or []
    if shifts:
        notes.append(
            Text(
                f"clock skew: {plural(len(shifts), 'span')} moved into their caller's window",
                style="dim",
            )
        )
    return notes


def journey_table(journey: Json) -> RenderableType:
    """The traces of a journey in time order, with the think time before each."""
    traces: Sequence[Json] = journey["traces"]
    who = (
        f"session {journey['session_id']}"
        if journey.get("session_id")
        else f"user {journey['user_id']}"
    )
    heading = Text(f"Journey of {who}", style="bold")
    if journey.get("session_id") and journey.get("user_id"):
        heading.append(f" (user {journey['user_id']})")
    if traces:
        first_start = traces[0]["start_ns"]
        span_ms = max((t["start_ns"] - first_start) / 1e6 + t["duration_ms"] for t in traces)
        errors = sum(1 for t in traces if t["status"] == "error")
        heading.append(f": {plural(len(traces), 'trace')} over {format_ms(span_ms)}")
        if errors:
            heading.append(f", {errors} with errors", style=ERROR_STYLE)
        heading.append(f"\nstarted {format_start(first_start)} UTC", style="dim")

    rows = []
    for number, trace in enumerate(traces, start=1):
        start = Text(format_clock(trace["start_ns"]))
        gap = trace.get("gap_ms")
        if gap is not None:
            # Think time: how long the user waited since the previous step ended.
            start.append(f"\n+{format_ms(gap)}", style="dim")
        # A session's journey need not repeat its session id on every row; a user's does.
        entry = _trace_cell(trace, with_session=not journey.get("session_id"))
        trace_cells = (entry, Text(format_ms(trace["duration_ms"])), _status(trace))
        rows.append((Text(str(number)), start, *trace_cells))
    headers = ("#", "start (UTC)", "operation · trace id · services", "duration", "status")
    return Group(heading, Text(), _list_table(headers, rows, flexible=2))


def traces_table(traces: Sequence[Json]) -> RenderableType:
    """Trace summaries, in the order given (the API answers newest first)."""
    if not traces:
        return Text("No traces match.", style="dim")
    rows = []
    for trace in traces:
        status = _status(trace)
        status.append("\n" + plural(trace["span_count"], "span"), style="dim")
        if trace.get("synthetic"):
            status.append("\nsynthetic", style="cyan")  # a probe's or a drill's
        rows.append(
            (
                Text(format_start(trace["start_ns"])),
                _trace_cell(trace),
                Text(format_ms(trace["duration_ms"])),
                status,
            )
        )
    headers = ("start (UTC)", "operation · trace id · services", "duration", "status")
    return _list_table(headers, rows)


def journeys_table(journeys: Sequence[Json]) -> RenderableType:
    """Journey summaries, one per session."""
    if not journeys:
        return Text("No journeys yet: no span carries a session id.", style="dim")
    rows = []
    for journey in journeys:
        who = Text(journey["session_id"], style="bold")
        if journey.get("user_id"):
            who.append(f"\nuser {journey['user_id']}", style="dim")
        who.append("\n" + ", ".join(journey["services"]), style="dim")
        counts = Text(str(journey["trace_count"]))
        errors = journey["error_count"]
        if errors:
            counts.append(f"\n{ERROR_MARK} {plural(errors, 'error')}", style=ERROR_STYLE)
        rows.append(
            (
                Text(format_start(journey["start_ns"])),
                who,
                Text(format_ms(journey["duration_ms"])),
                counts,
            )
        )
    return _list_table(("start (UTC)", "session · user · services", "duration", "traces"), rows)


def services_table(services: Sequence[Json], stats: Json | None = None) -> RenderableType:
    """Every service and the operations (span names) seen in it."""
    table = plain_table()
    table.add_column("service", no_wrap=True)
    table.add_column("operations")
    for entry in services:
        table.add_row(Text(entry["name"], style="bold"), Text(", ".join(entry["operations"])))
    if stats is None:
        return table
    totals = Text(
        f"{len(services)} services, {stats['spans']} spans in {stats['traces']} traces, "
        f"{plural(stats['sessions'], 'session')}",
        style="dim",
    )
    return Group(table, totals)


def format_ms(ms: float) -> str:
    """A duration at a useful precision: ``850 µs``, ``12.4 ms``, ``1.52 s``, ``2m 05s``."""
    if ms >= 60_000:
        minutes, seconds = divmod(round(ms / 1000), 60)
        return f"{minutes}m {seconds:02d}s"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.1f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms * 1000:.0f} µs"


def format_start(ns: int) -> str:
    """A UTC timestamp to the millisecond, e.g. ``2025-01-31 12:00:00.123``."""
    seconds, remainder = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{remainder // 1_000_000:03d}"


def format_clock(ns: int) -> str:
    """The time of day of a UTC timestamp, e.g. ``12:00:00.123``."""
    return format_start(ns).partition(" ")[2]


def plain_table() -> Table:
    # SIMPLE_HEAD draws a space between columns, so one space of padding is enough.
    return Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))


def _overhead(columns: int) -> int:
    """Cells ``_table`` spends on separators and padding besides its columns' widths."""
    return 2 * columns - 1


def _list_table(
    headers: Sequence[str], rows: Sequence[Sequence[Text]], *, flexible: int = 1
) -> Table:
    """A table whose ``flexible`` column takes whatever width the others leave.

    That column holds the long values (trace ids are 32 characters), one per line,
    so a list stays readable in an 80-column terminal: the other columns are as
    wide as their contents and never wrap, and the long one folds rather than cuts.
    """
    table = plain_table()
    table.expand = True
    for index, header in enumerate(headers):
        if index == flexible:
            table.add_column(header, overflow="fold", ratio=1)
        else:
            widest = _column_width(header, [row[index] for row in rows])
            table.add_column(header, no_wrap=True, width=widest)
    for row in rows:
        table.add_row(*row)
    return table


def _column_width(header: str, cells: Sequence[Text]) -> int:
    return max([len(header), *(_cell_width(cell) for cell in cells)])


def _cell_width(cell: Text) -> int:
    return max(line.cell_len for line in cell.split("\n"))


def _trace_cell(summary: Json, *, with_session: bool = True) -> Text:
    cell = _entry(summary)
    cell.append(f"\n{summary['trace_id']}")
    cell.append("\n" + ", ".join(summary["services"]), style="dim")
    if with_session and summary.get("session_id"):
        cell.append(f" · session {summary['session_id']}", style="dim")
    return cell


def _trace_heading(summary: Json) -> Text:
    heading = Text.assemble(
        ("Trace ", "bold"), (summary["trace_id"], "bold"), "  ", _entry(summary)
    )
    heading.append(
        f"\n{format_ms(summary['duration_ms'])}, {plural(summary['span_count'], 'span')}"
    )
    if summary["error_count"]:
        heading.append(f", {plural(summary['error_count'], 'error')}", style=ERROR_STYLE)
    heading.append(f" · started {format_start(summary['start_ns'])} UTC", style="dim")
    keys = [
        f"{key} {summary[f'{key}_id']}" for key in ("session", "user") if summary.get(f"{key}_id")
    ]
    if keys:
        heading.append("\n" + " · ".join(keys), style="dim")
    return heading


def _span_label(span: Json) -> Text:
    label = Text("  " * span["depth"])
    label.append(span["name"], style=ERROR_STYLE if span["status"] == "error" else "")
    if span["status"] == "error":
        label.append(f" {ERROR_MARK}", style=ERROR_STYLE)
    if span["orphan"]:
        # The parent never arrived: shown at the top level, flagged so it is not taken for a root.
        label.append(" (orphan)", style="yellow")
    return label


def _bar(start: int, end: int, trace_start: int, trace_end: int, width: int, style: str) -> Text:
    """``width`` cells with the span's share of the trace's timeline filled in."""
    total = max(1, trace_end - trace_start)
    offset = min(width - 1, int((start - trace_start) * width / total))
    length = max(1, round((end - start) * width / total))  # a span is never invisible
    length = min(length, width - offset)
    bar = Text(" " * offset)
    bar.append("█" * length, style=style)
    bar.append(" " * (width - offset - length))
    return bar


def _self_time_line(trace: Json, colours: Mapping[str, str]) -> Text:
    by_service: Mapping[str, float] = trace.get("self_time_by_service_ms", {})
    total = sum(by_service.values()) or 1.0
    line = Text("self time by service: ", style="bold")
    for index, (service, ms) in enumerate(by_service.items()):
        if index:
            line.append(", ")
        line.append(service, style=colours.get(service, ""))
        line.append(f" {format_ms(ms)} ({ms / total:.0%})")
    return line


def _entry(summary: Json) -> Text:
    return Text.assemble(
        (summary["root_operation"] or "(no root span)", "bold"),
        (f" ({summary['root_service']})", "dim"),
    )


def _status(summary: Json) -> Text:
    errors = summary["error_count"]
    if errors:
        return Text(f"{ERROR_MARK} {plural(errors, 'error')}", style=ERROR_STYLE)
    return Text("ok", style="green")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _service_colours(services: Iterable[str]) -> dict[str, str]:
    colours: dict[str, str] = {}
    for service in services:
        if service not in colours:
            colours[service] = _PALETTE[len(colours) % len(_PALETTE)]
    return colours

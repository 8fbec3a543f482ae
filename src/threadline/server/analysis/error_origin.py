"""Where an error started, and which spans merely passed it on.

When a call fails deep in a trace, every caller above it usually fails too, and
a trace view full of red spans hides the one that matters. The *origin* of an
error is an error span none of whose descendants is (still) an error: below it
everything went fine, so the failure began there. The error spans above it are
listed as having *propagated* it.

**Retries.** A failed attempt followed by a successful one is not a failure of
the trace. An error span is *recovered* when a later sibling with the same
service and operation (a retry) did not fail; errors inside a recovered attempt
are recovered too. Recovered errors are never origins.

**Did the trace fail?** From its root (the earliest span without a parent, or
the earliest orphan when the root never arrived):

- root status ERROR: failed;
- root status OK: not failed — the service said explicitly it handled whatever
  went wrong below it;
- root status UNSET (most instrumentations leave successful spans unset, and
  some never set it at all): failed when any error is left unrecovered.

**Several origins.** Independent failures (a fan-out where two branches fail)
give several origins. ``origins`` lists them all, earliest error first; the error
time is that of the span's last ``exception`` event, else its end (status is set
when a span ends). ``origin`` is the first one, and only when the trace failed.

**What it said.** The exception type and message come from the last
``exception`` event (``exception.type``, ``exception.message``, as OpenTelemetry's
``record_exception`` writes them). A span that failed without one (many services log
the failure and set the status, but record no exception) is described by its last
log line at ERROR or above, when the caller passes the trace's log lines: the line's
body is the message, its ``exception.type`` attribute (``logger.exception`` sets it)
the type, and its time the error time. Else the span's status message.
``message_source`` says which of the three it was.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from threadline.server.analysis.tree import SpanTree, children_by_parent, root_span
from threadline.server.model import SpanEvent, SpanRecord, StatusCode

EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
# OpenTelemetry severity numbers: 17-20 ERROR, 21-24 FATAL.
ERROR_SEVERITY: Final = 17

MessageSource = Literal["exception", "log", "status"]


class LogLine(Protocol):
    """What error origin reads of a log record (``server.log_batch.LogRecord`` has it)."""

    @property
    def time_ns(self) -> int: ...
    @property
    def span_id(self) -> str | None: ...
    @property
    def severity_number(self) -> int: ...
    @property
    def body(self) -> str: ...
    @property
    def body_kind(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ErrorSpan:
    """An error span that passed the error on to its caller."""

    span_id: str
    service: str
    operation: str


@dataclass(frozen=True, slots=True)
class ErrorOrigin:
    """A span where an error started, what it said, and who propagated it (nearest first)."""

    span_id: str
    service: str
    operation: str
    exception_type: str | None
    message: str
    error_at_ns: int
    propagated_by: tuple[ErrorSpan, ...]
    message_source: MessageSource = "status"


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """The errors of one trace: whether it failed, where, and what retries recovered."""

    trace_failed: bool
    origins: tuple[ErrorOrigin, ...]
    recovered_span_ids: tuple[str, ...]
    error_span_count: int

    @property
    def origin(self) -> ErrorOrigin | None:
        """Where the trace's failure started; ``None`` when the trace did not fail."""
        return self.origins[0] if self.trace_failed and self.origins else None


def find_error_origin(tree: SpanTree, logs: Iterable[LogLine] = ()) -> ErrorReport:
    """The error report of ``tree`` (see the module docstring for the rules); ``logs``
    are the trace's log lines, any order (only those at ERROR or above are read)."""
    error_lines = _last_error_lines(logs)
    by_id = {node.span.span_id: node.span for node in tree.nodes}
    parent_of = {
        node.span.span_id: node.span.parent_span_id
        for node in tree.nodes
        if node.depth > 0 and node.span.parent_span_id
    }  # orphans and roots have no parent here
    children = children_by_parent(tree)
    recovered = _recovered(tree, children, parent_of)
    depth = {node.span.span_id: node.depth for node in tree.nodes}

    # An origin has no unrecovered error anywhere below it: computed children first.
    error_below: set[str] = set()
    origins: list[SpanRecord] = []
    for node in reversed(tree.nodes):
        span = node.span
        unrecovered_error = span.is_error and span.span_id not in recovered
        below = any(kid.span_id in error_below for kid in children.get(span.span_id, ()))
        if unrecovered_error and not below:
            origins.append(span)
        if unrecovered_error or below:
            error_below.add(span.span_id)
    origins.sort(key=lambda s: (_error_at_ns(s, error_lines), -depth[s.span_id], s.span_id))

    root = root_span(tree)
    if root is None or root.status is StatusCode.OK:
        failed = False
    else:
        failed = root.is_error or bool(origins)
    return ErrorReport(
        trace_failed=failed,
        origins=tuple(_describe(span, by_id, parent_of, error_lines) for span in origins),
        recovered_span_ids=tuple(
            node.span.span_id for node in tree.nodes if node.span.span_id in recovered
        ),
        error_span_count=sum(1 for node in tree.nodes if node.span.is_error),
    )


def _recovered(
    tree: SpanTree, children: dict[str, list[SpanRecord]], parent_of: dict[str, str]
) -> set[str]:
    """Error spans made good by a successful retry, or inside an attempt that was."""
    retried: set[str] = set()
    for kids in children.values():
        attempts: dict[tuple[str, str], list[SpanRecord]] = defaultdict(list)
        for kid in kids:
            attempts[(kid.service_name, kid.name)].append(kid)
        for group in attempts.values():
            for attempt in group:
                if attempt.is_error and any(
                    later.start_ns > attempt.start_ns and not later.is_error for later in group
                ):
                    retried.add(attempt.span_id)
    in_recovered_attempt: set[str] = set()
    recovered: set[str] = set()
    for node in tree.nodes:  # pre-order: a parent is decided before its children
        span_id = node.span.span_id
        if span_id in retried or parent_of.get(span_id, "") in in_recovered_attempt:
            in_recovered_attempt.add(span_id)
            if node.span.is_error:
                recovered.add(span_id)
    return recovered


def _last_error_lines(logs: Iterable[LogLine]) -> dict[str, LogLine]:
    """Each span's last log line at ERROR or above."""
    last: dict[str, LogLine] = {}
    for line in logs:
        if line.span_id and line.severity_number >= ERROR_SEVERITY:
            seen = last.get(line.span_id)
            if seen is None or line.time_ns >= seen.time_ns:
                last[line.span_id] = line
    return last


def _describe(
    span: SpanRecord,
    by_id: dict[str, SpanRecord],
    parent_of: dict[str, str],
    error_lines: dict[str, LogLine],
) -> ErrorOrigin:
    event = _last_exception(span)
    line = None if event else error_lines.get(span.span_id)
    exception_type: object = None
    source: MessageSource
    if event is not None:
        exception_type = event.attributes.get(EXCEPTION_TYPE)
        message = event.attributes.get(EXCEPTION_MESSAGE)
        source = "exception"
    elif line is not None:
        exception_type = line.attributes.get(EXCEPTION_TYPE)
        message = line_message(line)
        source = "log"
    else:
        message = None
    if not message:
        message, source = span.status_message, "status"
    propagated: list[ErrorSpan] = []
    ancestor = parent_of.get(span.span_id)
    while ancestor is not None:
        above = by_id[ancestor]
        if above.is_error:
            propagated.append(ErrorSpan(above.span_id, above.service_name, above.name))
        ancestor = parent_of.get(ancestor)
    return ErrorOrigin(
        span_id=span.span_id,
        service=span.service_name,
        operation=span.name,
        exception_type=str(exception_type) if exception_type else None,
        message=str(message),
        error_at_ns=_error_at_ns(span, error_lines),
        propagated_by=tuple(propagated),
        message_source=source,
    )


# Where structured log bodies keep their text: stdlib logging through OTel ("message"),
# many JSON loggers ("msg"), structlog ("event").
_MESSAGE_KEYS: Final = ("message", "msg", "event")


def line_message(line: LogLine) -> str | None:
    """A log line's text: a string body as it is; of a structured body only its message
    field. The rest of a structured body may hold anything (user ids, addresses), and a
    message is shown as plain text, where field-by-field masking cannot reach."""
    if line.body_kind == "string":
        return line.body
    if line.body_kind != "json":
        return None
    try:
        body = json.loads(line.body)
    except ValueError:
        return None
    if isinstance(body, dict):
        for key in _MESSAGE_KEYS:
            if isinstance(body.get(key), str):
                return str(body[key])
    return None


def _last_exception(span: SpanRecord) -> SpanEvent | None:
    exceptions = [event for event in span.events if event.name == EXCEPTION_EVENT]
    return max(exceptions, key=lambda event: event.time_ns, default=None)


def _error_at_ns(span: SpanRecord, error_lines: Mapping[str, LogLine]) -> int:
    event = _last_exception(span)
    if event is not None:
        return event.time_ns
    line = error_lines.get(span.span_id)
    return line.time_ns if line is not None else span.end_ns

"""What the handler captures of a log record, and what the worker makes of it.

The caller's thread keeps the ``logging.LogRecord`` itself and reads only what must be
read then: the current span and the journey keys (both live in the caller's context).
Formatting the message, the exception and the attributes, pseudonymising the user id
and redaction all happen on the worker (``prepare``). So the message is formatted from
its arguments a little later than a stock handler would: an argument mutated in the
meantime shows its new value, as with any queued handler (``QueueHandler`` formats
early for that reason; the cost on the caller is what this pipeline saves).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NamedTuple

from threadline.conventions import JOURNEY_ID, SESSION_ID, USER_ID
from threadline.redaction import REDACTED_FIELDS, Redactor


class CapturedLog(NamedTuple):
    """A record as queued by the handler (a tuple: cheap to build on the caller's thread)."""

    record: logging.LogRecord
    trace_id: int
    span_id: int
    flags: int
    session_id: object
    user_id: object
    journey_id: object


@dataclass(frozen=True, slots=True)
class EncodedLog:
    """A record ready to encode: formatted, stamped and redacted."""

    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    body: str
    attributes: Mapping[str, object]
    trace_id: int
    span_id: int
    flags: int
    scope: str


# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def severity_number(levelno: int) -> int:
    """OpenTelemetry severity number of a ``logging`` level (as the stock handler maps it)."""
    if levelno <= logging.NOTSET:
        return 0
    if levelno < logging.DEBUG:
        return 1  # TRACE
    if levelno < logging.INFO:
        return 5 + min(3, levelno - logging.DEBUG)
    if levelno < logging.WARNING:
        return 9 + min(3, levelno - logging.INFO)
    if levelno < logging.ERROR:
        return 13 + min(3, levelno - logging.WARNING)
    if levelno < logging.CRITICAL:
        return 17 + min(3, levelno - logging.ERROR)
    return 21 + min(3, levelno - logging.CRITICAL)


def prepare(
    captured: CapturedLog,
    pseudonymize: Callable[[str], str],
    redactor: Redactor | None,
) -> EncodedLog:
    """Format, stamp and redact one captured record (on the worker thread)."""
    record = captured.record
    body = record.getMessage()
    attributes: dict[str, object] = {
        "code.filepath": record.pathname,
        "code.lineno": record.lineno,
        "code.function": record.funcName,
        "thread.name": record.threadName or "",
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            attributes[key] = value if isinstance(value, str | int | float | bool) else repr(value)
    if record.exc_info and record.exc_info[1] is not None:
        kind, error, trace = record.exc_info
        attributes["exception.type"] = getattr(kind, "__qualname__", str(kind))
        attributes["exception.message"] = str(error)
        attributes["exception.stacktrace"] = "".join(traceback.format_exception(kind, error, trace))
    if isinstance(captured.session_id, str):
        attributes[SESSION_ID] = captured.session_id
    if isinstance(captured.user_id, str):
        attributes[USER_ID] = pseudonymize(captured.user_id)
    if isinstance(captured.journey_id, str):
        attributes[JOURNEY_ID] = captured.journey_id
    if redactor is not None:
        found: list[str] = []
        masked = redactor.text(body)
        if masked is not None:
            body = masked
            found.append("body")
        redacted = redactor.attributes(attributes, found)
        if redacted is not None:
            attributes = redacted
        if found:
            attributes[REDACTED_FIELDS] = list(found)
    created_ns = int(record.created * 1e9)
    return EncodedLog(
        time_ns=created_ns,
        observed_ns=created_ns,
        severity_number=severity_number(record.levelno),
        severity_text=record.levelname,
        body=body,
        attributes=attributes,
        trace_id=captured.trace_id,
        span_id=captured.span_id,
        flags=captured.flags,
        scope=record.name,
    )

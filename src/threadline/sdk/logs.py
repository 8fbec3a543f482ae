"""Logs joined to traces: every log record carries the trace, the span and the journey.

Standard ``logging``: :func:`install_log_record_factory` (run by ``configure()``)
wraps the log-record factory, so every record created anywhere in the process gets
these attributes, whatever logger or handler it goes through:

=================  =================================================  ===================
attribute          value                                              without a span
=================  =================================================  ===================
``trace_id``       32 hex digits of the current trace                 ``""``
``span_id``        16 hex digits of the current span                  ``""``
``session.id``     the journey's session (baggage)                    ``""``
``user.id``        the journey's (pseudonymised) user                 ``""``
=================  =================================================  ===================

so a format string can use ``%(trace_id)s`` or ``%(session.id)s`` and a JSON
formatter finds them as fields. :class:`TraceContextFilter` does the same as a
``logging.Filter`` for handlers that should carry it without the factory.

structlog: add :func:`add_trace_context` to the processor chain, before the renderer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import MutableMapping
from typing import Any, Final

from opentelemetry import baggage, trace

from threadline.conventions import SESSION_ID, USER_ID

TRACE_ID: Final = "trace_id"
SPAN_ID: Final = "span_id"
FIELDS: Final = (TRACE_ID, SPAN_ID, SESSION_ID, USER_ID)

_lock = threading.Lock()
_installed = False


def trace_fields() -> dict[str, str]:
    """The four fields for the current context; empty strings for what is absent."""
    span_context = trace.get_current_span().get_span_context()
    entries = baggage.get_all()
    session_id = entries.get(SESSION_ID)
    user_id = entries.get(USER_ID)
    return {
        TRACE_ID: f"{span_context.trace_id:032x}" if span_context.is_valid else "",
        SPAN_ID: f"{span_context.span_id:016x}" if span_context.is_valid else "",
        SESSION_ID: "" if session_id is None else str(session_id),
        USER_ID: "" if user_id is None else str(user_id),
    }


def _stamp(record: logging.LogRecord) -> None:
    for key, value in trace_fields().items():
        # A record built by a caller that set these itself (extra=...) keeps its values.
        if key not in record.__dict__:
            record.__dict__[key] = value


class TraceContextFilter(logging.Filter):
    """A filter that adds ``trace_id``, ``span_id``, ``session.id``, ``user.id`` to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Not through the guard: its report is itself a log record, which would come back here.
        with contextlib.suppress(Exception):  # logging must never fail because of tracing
            _stamp(record)
        return True


def install_log_record_factory() -> None:
    """Make every ``logging`` record carry the trace fields; safe to call more than once."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def record_with_trace(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            with contextlib.suppress(Exception):  # as in TraceContextFilter
                _stamp(record)
            return record

        logging.setLogRecordFactory(record_with_trace)
        _installed = True


def add_trace_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the trace fields for the current context, where absent."""
    try:
        for key, value in trace_fields().items():
            if value:
                event_dict.setdefault(key, value)
    except Exception:  # logging must never fail because of tracing
        pass
    return event_dict

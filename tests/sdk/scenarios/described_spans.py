"""What the server-span scenarios print of a span: every field both instrumentations set."""

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def described(span: ReadableSpan) -> dict[str, Any]:
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "attributes": dict(span.attributes or {}),
        "status": [span.status.status_code.name, span.status.description],
        "events": [
            {k: v for k, v in (e.attributes or {}).items() if k != "exception.stacktrace"}
            for e in span.events
        ],
        "stacktrace_ends_with": [
            str((e.attributes or {}).get("exception.stacktrace", "")).strip().splitlines()[-1:]
            for e in span.events
        ],
        "trace_id": f"{span.context.trace_id:032x}" if parent else None,
        "parent": f"{parent.span_id:016x}" if parent else None,
        "remote_parent": parent.is_remote if parent else None,
        "trace_state": span.context.trace_state.to_header(),
        "ended_after_start": (span.end_time or 0) >= (span.start_time or 0) > 0,
    }

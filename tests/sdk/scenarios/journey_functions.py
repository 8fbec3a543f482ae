"""Scenario: journey() as decorator on sync and async functions, and nested as context managers."""

import asyncio
import json

from opentelemetry import trace

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
threadline.configure(service_name="journeys", export_delay_ms=50)
tracer = trace.get_tracer("scenario")


@threadline.journey(session_id="s-sync", user_id="bob")
def sync_work() -> dict[str, str]:
    with tracer.start_as_current_span("sync-work"):
        return current_journey()


@threadline.journey(session_id="s-async", user_id="bob")
async def async_work() -> dict[str, str]:
    await asyncio.sleep(0)
    with tracer.start_as_current_span("async-work"):
        return current_journey()


with (
    tracer.start_as_current_span("outer"),
    threadline.journey(session_id="s-outer"),
    threadline.journey(journey_id="j-1"),
    tracer.start_as_current_span("merged"),
):
    merged = current_journey()

result = {
    "sync": sync_work(),
    "async": asyncio.run(async_work()),
    "merged": merged,
    "after": current_journey(),
}
threadline.shutdown()
print(json.dumps(result))

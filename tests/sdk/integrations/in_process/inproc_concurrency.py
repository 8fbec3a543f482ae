"""Context across asyncio tasks, executors and threads: work keeps its submitter's trace and
journey."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from opentelemetry import trace

import threadline
from threadline.sdk.concurrency import context_executor, context_thread, wrap
from threadline.testing import SpanCapture, assert_one_trace

tracer = trace.get_tracer("tests.concurrency")


def _work(name: str) -> None:
    with tracer.start_as_current_span(name):
        pass


def test_asyncio_tasks_gather_taskgroup_and_executor_stay_in_the_trace(
    threadline_spans: SpanCapture,
) -> None:
    """Tasks, gather, TaskGroup and run_in_executor on a context executor all join the caller's
    trace and journey."""

    async def child(name: str) -> None:
        await asyncio.sleep(0)
        _work(name)

    async def request() -> None:
        loop = asyncio.get_running_loop()
        with (
            context_executor(max_workers=2) as pool,
            threadline.journey(session_id="s-async"),
            tracer.start_as_current_span("request"),
        ):
            await asyncio.create_task(child("task"))
            await asyncio.gather(child("gather-1"), child("gather-2"))
            async with asyncio.TaskGroup() as group:
                group.create_task(child("group"))
            await loop.run_in_executor(pool, _work, "executor")

    asyncio.run(request())
    spans = threadline_spans.spans
    assert sorted(s.name for s in spans) == sorted(
        ["request", "task", "gather-1", "gather-2", "group", "executor"]
    )
    assert_one_trace(spans, journey={"session.id": "s-async"})


def test_plain_executor_loses_the_context_that_ours_keeps(threadline_spans: SpanCapture) -> None:
    """A stock ThreadPoolExecutor starts items in an empty context; context_executor does not."""
    with threadline.journey(session_id="s-pool"), tracer.start_as_current_span("submitter"):
        with ThreadPoolExecutor(max_workers=1) as plain:
            plain.submit(_work, "plain").result()
        with context_executor(max_workers=1) as carried:
            carried.submit(_work, "carried").result()
            list(carried.map(_work, ["mapped"]))
    by_name = {s.name: s for s in threadline_spans.spans}
    assert by_name["plain"].parent is None
    assert "session.id" not in (by_name["plain"].attributes or {})
    assert_one_trace(
        [by_name["submitter"], by_name["carried"], by_name["mapped"]],
        journey={"session.id": "s-pool"},
    )


def test_threads_and_wrapped_callables_keep_the_creators_context(
    threadline_spans: SpanCapture,
) -> None:
    """A context_thread target and a wrap()-ed callable run in the context where they were made."""
    with threadline.journey(session_id="s-thread"), tracer.start_as_current_span("creator"):
        thread = context_thread(_work, args=("thread",))
        later = wrap(_work)
    thread.start()
    thread.join(5)
    other = threading.Thread(target=later, args=("wrapped",))
    other.start()
    other.join(5)
    assert_one_trace(threadline_spans.spans, journey={"session.id": "s-thread"})
    assert len(threadline_spans.spans) == 3


def test_concurrent_work_items_never_see_each_others_journey(
    threadline_spans: SpanCapture,
) -> None:
    """200 interleaved requests sharing one pool: each span carries only its own request's ids."""

    async def request(index: int, pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        with (
            threadline.journey(session_id=f"s-{index}"),
            tracer.start_as_current_span(f"request-{index}"),
        ):
            await asyncio.sleep(0)
            await asyncio.gather(
                loop.run_in_executor(pool, _work, f"pool-{index}"),
                asyncio.to_thread(_work, f"thread-{index}"),
            )

    async def main() -> None:
        with context_executor(max_workers=8) as pool:
            await asyncio.gather(*(request(i, pool) for i in range(200)))

    asyncio.run(main())
    spans = threadline_spans.spans
    assert len(spans) == 600
    by_trace: dict[int, list[str]] = {}
    for span in spans:
        index = span.name.rsplit("-", 1)[1]
        assert (span.attributes or {}).get("session.id") == f"s-{index}", span.name
        assert span.context is not None
        by_trace.setdefault(span.context.trace_id, []).append(index)
    assert len(by_trace) == 200
    assert all(len(set(indexes)) == 1 for indexes in by_trace.values())

"""Celery on a real Redis broker: the task continues the caller's trace and journey, and a
retried task stays in the trace with its attempt number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdk.collector import Collector
from support.missing import require_module

from .conftest import require_broker

require_module("celery")

# Redis database reserved for this test: Celery's broker and result keys go there.
CELERY_DB = 15
PRODUCER = 4
CONSUMER = 5


def test_retried_task_stays_in_the_callers_trace(
    run_boundary_scenario: Callable[..., Any], collector: Collector
) -> None:
    """The task sees the caller's journey; both runs (first and retry) are CONSUMER spans of the
    caller's trace, numbered 1 and 2."""
    require_broker("redis")
    redis = require_module("redis")
    try:
        output = run_boundary_scenario("celery_boundaries", str(CELERY_DB))
    finally:
        with redis.Redis(host="127.0.0.1", port=6379, db=CELERY_DB) as client:
            client.flushdb()  # the broker's and the result backend's keys of this run
    assert output["result"] == {"journey": {"session.id": "s-celery"}, "retries": 1, "amount": 7}

    trace_id = output["trace_id"]
    spans = collector.wait_for(
        lambda got: sum(s.trace_id == trace_id and s.kind == CONSUMER for s in got) >= 2
    )
    in_trace = [s for s in spans if s.trace_id == trace_id]
    runs = [s for s in in_trace if s.kind == CONSUMER]
    sends = [s for s in in_trace if s.kind == PRODUCER]
    assert len(runs) == 2
    assert len(sends) == 2
    assert sorted(int(str(r.attributes["threadline.delivery.attempt"])) for r in runs) == [1, 2]
    assert {r.parent_span_id for r in runs} == {s.span_id for s in sends}
    assert all(s.attributes.get("session.id") == "s-celery" for s in in_trace)

"""A random journey workload of late, moving traces: what the kept journey state
(SLO minutes, step links) must survive.

Each trace belongs to one of 30 sessions and starts in the two hours after ``T0``;
four in ten arrive in two parts, the child first and the root later, up to three
minutes earlier and sometimes with another session id, so a late root moves its
trace to an earlier start, another step or another session.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final, TypeVar

from support.spans import span_record
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanRecord, StatusCode
from threadline.server.storage.base import Store

StoreT = TypeVar("StoreT", bound=Store)

S: Final = 1_000_000_000
MINUTE: Final = 60 * S
T0: Final = 1_700_000_040 * S  # a whole minute
OPERATIONS: Final = ("POST /cart", "POST /checkout", "GET /home")


def journey_trace(rng: random.Random, n: int) -> list[list[SpanRecord]]:
    """A trace of a random session and minute, in one part or two: a late part may
    hold the root (earlier, so the trace's start, step and session may move)."""
    trace_id = f"{n + 1:032x}"
    session = f"s{rng.randrange(30):02d}"
    user = f"u{session}"
    start = T0 + rng.randrange(118 * MINUTE // S) * S
    failed = rng.random() < 0.15
    root = span_record(
        trace_id, "r", None, "shop", rng.choice(OPERATIONS), start, start + S,
        session_id=session, user_id=user,
        **({"status": StatusCode.ERROR} if failed and rng.random() < 0.5 else {}),
    )  # fmt: skip
    child = span_record(
        trace_id, "c", "r", "pay" if rng.random() < 0.5 else "stock", "POST /charge",
        start + S // 2, start + S, session_id=session, user_id=user,
        **({"status": StatusCode.ERROR} if failed else {}),
    )  # fmt: skip
    if rng.random() < 0.6:
        return [[root, child]]
    # The child first (its own root until the real one comes), the root later: up to
    # two minutes earlier, maybe with another (smaller) session id.
    early = start - rng.randrange(3 * MINUTE // S) * S
    other = f"s{rng.randrange(30):02d}" if rng.random() < 0.3 else session
    late_root = span_record(
        trace_id, "r", None, "shop", rng.choice(OPERATIONS), early, start + S,
        session_id=other, user_id=f"u{other}",
    )  # fmt: skip
    late_child = span_record(
        trace_id, "c", "r", child.service_name, child.name, start + S // 2, start + S,
        session_id=session, user_id=user, status=child.status,
    )  # fmt: skip
    return [[late_child], [late_root]]


def interleaved(rng: random.Random, traces: int, batches: int = 8) -> list[list[SpanRecord]]:
    """``traces`` traces in ``batches`` batches: a trace's later part in a later batch
    than its earlier one (or the same, in the last), traces mixed across batches."""
    parts = [part for n in range(traces) for part in journey_trace(rng, n)]
    placed_in: list[list[SpanRecord]] = [[] for _ in range(batches)]
    placed: dict[str, int] = {}
    for part in parts:
        trace_id = part[0].trace_id
        at = rng.randrange(placed.get(trace_id, 0), batches)
        placed[trace_id] = at + 1 if at + 1 < batches else at
        placed_in[at].extend(part)
    return placed_in


def drive(store: StoreT, rng: random.Random, check: Callable[[StoreT], None]) -> None:
    """Write 160 traces in interleaved batches, folding after some, then delete 20 (tail
    sampling), erase two users and cut by retention mid-minute; ``check`` after every
    change, folded and not."""
    batches = interleaved(rng, 160)
    placed = sorted({span.trace_id for batch in batches for span in batch})
    for batch in batches:
        if batch:
            store.write(SpanBatch.from_records(batch)).result(timeout=30)
        check(store)  # unfolded traces merged where they are read
        if rng.random() < 0.6:
            store.compact_rollups()
            check(store)
    store.delete_traces(rng.sample(placed, 20))  # tail sampling
    check(store)
    store.compact_rollups()
    store.erase_user(["us03", "us07"])
    check(store)
    store.delete_older_than(T0 + 30 * MINUTE + 17 * S)  # retention, mid-minute
    check(store)
    store.compact_rollups()
    check(store)

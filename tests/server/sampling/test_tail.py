"""Tail sampling: whole traces decided after they go quiet; drops deleted from a real store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.sampling_rules import SamplingRules, parse, sampled_by_ratio
from threadline.server.batch import SpanBatch
from threadline.server.model import SpanKind, SpanRecord, StatusCode
from threadline.server.sampling.tail import TailConfig, TailSampler
from threadline.server.storage.duckdb import DuckDBStore

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path / "spans.duckdb")
    yield opened
    opened.close()


def _trace(
    trace_id: str,
    *,
    root_ms: float = 50,
    error: bool = False,
    service: str = "web",
    name: str = "GET /page",
    attributes: dict[str, object] | None = None,
) -> list[SpanRecord]:
    """A root span and one child in another service."""
    root = SpanRecord(
        trace_id,
        "a" * 16,
        None,
        service,
        name,
        SpanKind.SERVER,
        T0,
        T0 + int(root_ms * MS),
        attributes=attributes or {},
    )
    child = SpanRecord(
        trace_id,
        "b" * 16,
        "a" * 16,
        "db",
        "SELECT",
        SpanKind.CLIENT,
        T0,
        T0 + 5 * MS,
        status=StatusCode.ERROR if error else StatusCode.UNSET,
    )
    return [root, child]


def _ingest(store: DuckDBStore, sampler: TailSampler, spans: list[SpanRecord]) -> None:
    """What the receiver does: write durably, then hand the batch to the sampler."""
    batch = SpanBatch.from_records(spans)
    store.write(batch).result()
    sampler.observe(batch)


def _ids(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(count)]


def _sampler(
    store: DuckDBStore,
    clock: ManualClock,
    rules: SamplingRules | None = None,
    *,
    keep_probability: float = 0.25,
    max_traces: int = 100_000,
) -> TailSampler:
    """A 10 s window and a 1 s default latency threshold."""
    config = TailConfig(10.0, keep_probability, 1000.0, max_traces)
    return TailSampler(store, lambda: rules or SamplingRules(), config, clock)


def test_errors_and_slow_traces_are_all_kept_and_the_configured_share_of_the_rest(
    store: DuckDBStore,
) -> None:
    """Every failed and every slow trace survives; of the others about a quarter, by trace id."""
    clock = ManualClock()
    rules = parse({"tail": {"latency_ms": {"GET /search": 200}}})
    sampler = _sampler(store, clock, rules)
    errors, slow, slow_by_operation, normal = (_ids(1, 20), _ids(2, 20), _ids(3, 20), _ids(4, 400))
    spans = [span for trace_id in errors for span in _trace(trace_id, error=True)]
    spans += [span for trace_id in slow for span in _trace(trace_id, root_ms=1500)]
    spans += [
        span
        for trace_id in slow_by_operation
        for span in _trace(trace_id, root_ms=300, name="GET /search")
    ]
    # 300 ms is slow for /search but not for this operation.
    spans += [span for trace_id in normal for span in _trace(trace_id, root_ms=300)]
    _ingest(store, sampler, spans)

    clock.now += 10.0
    assert sampler.decide_due() == 460

    stored = {r.trace_id for r in store.get_traces(errors + slow + slow_by_operation + normal)}
    assert set(errors) <= stored
    assert set(slow) <= stored
    assert set(slow_by_operation) <= stored
    kept_normal = stored & set(normal)
    assert kept_normal == {t for t in normal if sampled_by_ratio(int(t, 16), 0.25)}
    assert 70 <= len(kept_normal) <= 130
    stats = sampler.stats().to_json()
    assert stats["kept"] == {"error": 20, "slow": 40, "rule": 0, "probability": len(kept_normal)}
    assert stats["dropped"] == 400 - len(kept_normal)
    assert stats["spans_deleted"] == 2 * stats["dropped"]
    assert stats["pending"] == 0


def test_keep_rules_keep_matching_traces(store: DuckDBStore) -> None:
    """A trace with a span matching a [sampling.tail] keep entry is kept whatever its share."""
    clock = ManualClock()
    rules = parse({"tail": {"keep": [{"service": "web", "attributes": {"tenant": "vip"}}]}})
    sampler = _sampler(store, clock, rules, keep_probability=0.0)
    vip, other = _ids(5, 10), _ids(6, 10)
    spans = [span for t in vip for span in _trace(t, attributes={"tenant": "vip"})]
    spans += [span for t in other for span in _trace(t, attributes={"tenant": "free"})]
    _ingest(store, sampler, spans)
    clock.now += 10.0
    sampler.decide_due()
    assert {r.trace_id for r in store.get_traces(vip + other)} == set(vip)
    assert sampler.stats().kept["rule"] == 10


def test_a_trace_is_decided_only_after_it_has_been_quiet_for_the_window(
    store: DuckDBStore,
) -> None:
    """Spans still arriving keep a trace waiting; its decision covers every span."""
    clock = ManualClock()
    sampler = _sampler(store, clock, keep_probability=0.0)
    (trace_id,) = _ids(7, 1)
    root, child = _trace(trace_id)
    _ingest(store, sampler, [root])
    clock.now += 9.0
    _ingest(store, sampler, [child])
    clock.now += 9.0
    assert sampler.decide_due() == 0
    assert len(store.get_trace(trace_id)) == 2
    clock.now += 1.0
    assert sampler.decide_due() == 1
    assert store.get_trace(trace_id) == []


def test_an_error_arriving_late_in_the_window_keeps_the_whole_trace(store: DuckDBStore) -> None:
    """The decision waits for the trace's last span, so a late failure still counts."""
    clock = ManualClock()
    sampler = _sampler(store, clock, keep_probability=0.0)
    (trace_id,) = _ids(8, 1)
    root, _ = _trace(trace_id)
    _, failed_child = _trace(trace_id, error=True)
    _ingest(store, sampler, [root])
    clock.now += 5.0
    _ingest(store, sampler, [failed_child])
    clock.now += 10.0
    sampler.decide_due()
    assert len(store.get_trace(trace_id)) == 2


def test_spans_arriving_after_their_trace_was_dropped_are_deleted_too(
    store: DuckDBStore,
) -> None:
    """A straggler of a dropped trace does not survive as a fragment."""
    clock = ManualClock()
    sampler = _sampler(store, clock, keep_probability=0.0)
    (trace_id,) = _ids(9, 1)
    root, child = _trace(trace_id)
    _ingest(store, sampler, [root])
    clock.now += 10.0
    sampler.decide_due()
    _ingest(store, sampler, [child])
    assert len(store.get_trace(trace_id)) == 1
    sampler.decide_due()
    assert store.get_trace(trace_id) == []


def test_beyond_the_bound_the_quietest_traces_are_decided_early(store: DuckDBStore) -> None:
    """Memory stays bounded: with max_traces=5, ten waiting traces leave five waiting."""
    clock = ManualClock()
    sampler = _sampler(store, clock, keep_probability=1.0, max_traces=5)
    for trace_id in _ids(10, 10):
        _ingest(store, sampler, _trace(trace_id))
        clock.now += 0.1
    assert sampler.decide_due() == 5
    assert sampler.stats().pending == 5


def test_delete_traces_removes_every_span_of_the_given_traces_only(store: DuckDBStore) -> None:
    """Store.delete_traces deletes whole traces, counts spans, and ignores unknown ids."""
    first, second = _ids(11, 2)
    store.write(SpanBatch.from_records(_trace(first) + _trace(second))).result()
    assert store.delete_traces([first, "0" * 32]) == 2
    assert store.get_trace(first) == []
    assert len(store.get_trace(second)) == 2
    assert store.delete_traces([]) == 0
    assert store.delete_traces([first]) == 0

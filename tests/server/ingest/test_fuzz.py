"""Hostile input: malformed OTLP thrown at the decoder and at the real receiver.

Over 100,000 payloads go to the decoder in process (fast: no HTTP), made by
mutating real protobuf and JSON requests with a fixed seed and by Hypothesis with
``derandomize``, so every run throws the same ones; a few thousand more go to a
real server over HTTP with valid requests between them. Whatever arrives, the
answer is a span batch or a ``ThreadlineError`` (a 4xx), never another exception,
a 500 or a hang, memory stays bounded, and every valid span sent is stored.
"""

from __future__ import annotations

import gzip
import json
import random
import resource
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from support.live_server import live_server
from threadline.server.batch import SpanBatch
from threadline.server.errors import ThreadlineError
from threadline.server.ingest.decode import PayloadFormat, decode

from .otlp_payloads import (
    HAND_WRITTEN_JSON,
    HOSTILE_VALUES,
    one_span_request,
    protobuf_request,
    sdk_spans,
    to_otlp_json,
)
from .test_limits import field, request_with_extra_span_bytes

SEED: Final = 20_251_121
DECODER_PAYLOADS: Final = 100_000
HTTP_PAYLOADS: Final = 1_000
VALID_EVERY: Final = 10
# Growth of the process's peak memory the whole run may cause: the payloads are at
# most ~64 KB, so anything near this means something kept or amplified them.
MAX_RSS_GROWTH_KB: Final = 512 * 1024
MAX_PAYLOAD_BYTES: Final = 64 * 1024
INTERESTING_BYTES: Final = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x22, 0x2A, 0x4A)
HOSTILE_JSON: Final[tuple[Any, ...]] = (
    None,
    True,
    -1,
    2**64,
    -(2**63) - 1,
    1e308,
    "1e999",
    "NaN",
    "",
    "zz",
    "0" * 64,
    [],
    {},
    [[[[[[[[[[[]]]]]]]]]]],
    {"stringValue": {"nested": [1, 2]}},
    {"arrayValue": {"values": [{"kvlistValue": {"values": [{"key": 1}]}}]}},
    *HOSTILE_VALUES.values(),
)


def seeds() -> tuple[list[bytes], list[bytes]]:
    """Valid protobuf and JSON requests to mutate: real SDK spans and hand-made ones."""
    real = protobuf_request(sdk_spans())
    protobuf = [real.SerializeToString(), one_span_request().SerializeToString()]
    json_bodies = [HAND_WRITTEN_JSON.encode(), to_otlp_json(real), to_otlp_json(one_span_request())]
    return protobuf, json_bodies


def mutate_bytes(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    """One to four byte-level mutations: flips, interesting bytes, cuts, copies, splices."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buffer:
            buffer.extend(rng.randbytes(rng.randint(1, 16)))
            continue
        at = rng.randrange(len(buffer))
        choice = rng.randrange(8)
        if choice == 0:
            buffer[at] ^= 1 << rng.randrange(8)
        elif choice == 1:
            buffer[at] = rng.choice(INTERESTING_BYTES)
        elif choice == 2:
            del buffer[at : at + rng.randint(1, 32)]
        elif choice == 3:
            end = min(len(buffer), at + rng.randint(1, 64))
            buffer[at:at] = buffer[at:end] * rng.randint(1, 50)
        elif choice == 4:
            buffer[at:at] = rng.randbytes(rng.randint(1, 16))
        elif choice == 5:
            del buffer[at:]
        elif choice == 6:
            other = rng.choice(others)
            buffer[at:] = other[rng.randrange(len(other)) :]
        else:
            buffer[at : at + 1] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    return bytes(buffer[:MAX_PAYLOAD_BYTES])


def mutate_json(body: bytes, rng: random.Random) -> bytes:
    """Replace, drop or deepen a random node of a valid OTLP JSON document."""
    document = json.loads(body)
    nodes: list[tuple[Any, Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                nodes.append((node, key))
                collect(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                nodes.append((node, index))
                collect(node[index])

    collect(document)
    for _ in range(rng.randint(1, 3)):
        if not nodes:
            break
        parent, key = rng.choice(nodes)
        choice = rng.randrange(4)
        if choice == 0:
            parent[key] = rng.choice(HOSTILE_JSON)
        elif choice == 1 and isinstance(parent, dict):
            del parent[key]
            nodes = [(p, k) for p, k in nodes if not (p is parent and k == key)]
        elif choice == 2:
            deep: Any = parent[key]
            for _ in range(rng.choice((2, 20, 200))):
                deep = [deep]
            parent[key] = deep
        else:
            parent[key] = [parent[key]] * rng.randint(0, 5)
    try:
        text = json.dumps(document)
    except RecursionError:
        text = "[" * 5000
    return text.encode()[:MAX_PAYLOAD_BYTES]


def decodes_or_refuses(payload: bytes, payload_format: PayloadFormat) -> SpanBatch | None:
    """The decoder's contract: a batch, or a ThreadlineError; anything else fails the test."""
    refusal: ThreadlineError
    try:
        return decode(payload, payload_format)
    except ThreadlineError as exc:
        refusal = exc
    except Exception as exc:  # the point of the test: nothing else may escape
        raise AssertionError(
            f"{type(exc).__name__}: {exc} decoding {payload_format.name} {payload[:200]!r}"
        ) from exc
    assert 400 <= refusal.status_code < 500, refusal.message
    return None


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_decoder_survives_a_hundred_thousand_malformed_payloads() -> None:
    """100,000 mutated protobuf and JSON requests each decode or are refused with a 4xx."""
    rng = random.Random(SEED)
    protobuf, json_bodies = seeds()
    everything = protobuf + json_bodies
    rss_before = peak_rss_kb()
    decoded = refused = 0
    for n in range(DECODER_PAYLOADS):
        kind = n % 8
        if kind < 3:
            payload, payload_format = (
                mutate_bytes(rng.choice(protobuf), rng, everything),
                (PayloadFormat.PROTOBUF),
            )
        elif kind < 6:
            payload, payload_format = (
                mutate_bytes(rng.choice(json_bodies), rng, everything),
                (PayloadFormat.JSON),
            )
        elif kind == 6:
            payload, payload_format = mutate_json(rng.choice(json_bodies), rng), PayloadFormat.JSON
        else:
            # Another format's bytes, or random ones, in the wrong decoder.
            source = rng.choice(everything) if rng.random() < 0.5 else rng.randbytes(64)
            payload = mutate_bytes(source, rng, everything)
            payload_format = rng.choice((PayloadFormat.PROTOBUF, PayloadFormat.JSON))
        if decodes_or_refuses(payload, payload_format) is None:
            refused += 1
        else:
            decoded += 1
    assert decoded + refused == DECODER_PAYLOADS
    # Both outcomes must occur, or the mutations are not reaching the decoder's depths.
    assert decoded > 1000
    assert refused > 1000
    assert peak_rss_kb() - rss_before < MAX_RSS_GROWTH_KB


FUZZ_SETTINGS: Final = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ_SETTINGS
@given(st.binary(max_size=4096))
def test_any_bytes_as_protobuf_decode_or_are_refused(payload: bytes) -> None:
    """Arbitrary bytes sent as protobuf never escape as anything but a 4xx."""
    decodes_or_refuses(payload, PayloadFormat.PROTOBUF)


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "1e999", ""])
)
_OTLP_KEYS = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "traceId",
        "spanId",
        "parentSpanId",
        "name",
        "kind",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "attributes",
        "key",
        "value",
        "stringValue",
        "intValue",
        "arrayValue",
        "kvlistValue",
        "values",
        "events",
        "links",
        "status",
        "code",
        "resource",
    ]
)
_OTLP_SHAPED = st.recursive(
    _JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_OTLP_KEYS | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


@FUZZ_SETTINGS
@given(_OTLP_SHAPED)
def test_otlp_shaped_json_decodes_or_is_refused(document: Any) -> None:
    """JSON built from OTLP's own field names in any arrangement never escapes as a 500."""
    decodes_or_refuses(json.dumps(document).encode(), PayloadFormat.JSON)


@FUZZ_SETTINGS
@given(
    trace_id=st.binary(max_size=20),
    span_id=st.binary(max_size=10),
    start=st.integers(min_value=0, max_value=2**64 - 1),
    end=st.integers(min_value=0, max_value=2**64 - 1),
    kind=st.integers(min_value=0, max_value=2**31 - 1),
    name=st.text(max_size=50),
    key=st.text(max_size=20),
    value=st.text(max_size=50),
)
def test_protobuf_spans_with_any_field_values(
    trace_id: bytes,
    span_id: bytes,
    start: int,
    end: int,
    kind: int,
    name: str,
    key: str,
    value: str,
) -> None:
    """A well-formed message with arbitrary ids, times, kinds and text decodes or gets a 400."""
    request = one_span_request(
        trace_id=trace_id,
        span_id=span_id,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        kind=kind,
        name=name,
    )
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key=key
    ).value.string_value = value
    batch = decodes_or_refuses(request.SerializeToString(), PayloadFormat.PROTOBUF)
    valid = len(trace_id) == 16 and any(trace_id) and len(span_id) == 8 and any(span_id)
    valid = valid and start < 2**63 and end < 2**63
    assert (batch is not None) == valid
    if batch is not None:
        assert len(batch) == 1


def _encoded(payload: bytes, rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """``payload`` maybe compressed (properly or not) with a matching or lying header."""
    choice = rng.randrange(6)
    if choice == 0:
        return gzip.compress(payload), {"content-encoding": "gzip"}
    if choice == 1:
        return zlib.compress(payload), {"content-encoding": "deflate"}
    if choice == 2:
        return payload, {"content-encoding": "gzip"}  # says gzip, is not
    if choice == 3:
        return payload, {"content-encoding": rng.choice(["br", "gzip, zstd", "x-gzip"])}
    return payload, {}


def test_receiver_over_http_answers_4xx_and_keeps_every_valid_span(tmp_path: Path) -> None:
    """A thousand malformed requests get 4xx; the valid ones between them are all stored."""
    rng = random.Random(SEED + 1)
    protobuf, json_bodies = seeds()
    everything = protobuf + json_bodies
    mutators: list[Callable[[], tuple[bytes, str]]] = [
        lambda: (mutate_bytes(rng.choice(protobuf), rng, everything), PayloadFormat.PROTOBUF.value),
        lambda: (mutate_bytes(rng.choice(json_bodies), rng, everything), PayloadFormat.JSON.value),
        lambda: (mutate_json(rng.choice(json_bodies), rng), PayloadFormat.JSON.value),
        lambda: (
            rng.randbytes(rng.randint(0, 512)),
            rng.choice(["text/plain", "", "application/json"]),
        ),
    ]
    sent_valid: list[str] = []
    with live_server(tmp_path / "spans.duckdb") as server, httpx.Client(timeout=30) as client:
        for n in range(HTTP_PAYLOADS):
            if n % VALID_EVERY == 0:
                trace_id = rng.randbytes(15) + b"\x01"
                request = one_span_request(trace_id=trace_id)
                body, content_type = request.SerializeToString(), PayloadFormat.PROTOBUF.value
                if rng.random() < 0.5:
                    body = to_otlp_json(request)
                    content_type = PayloadFormat.JSON.value
                response = client.post(
                    server.traces_url, content=body, headers={"content-type": content_type}
                )
                assert response.status_code == 200, response.text
                sent_valid.append(trace_id.hex())
                continue
            body, content_type = rng.choice(mutators)()
            body, headers = _encoded(body, rng)
            response = client.post(
                server.traces_url,
                content=body,
                headers={"content-type": content_type, **headers},
            )
            assert response.status_code < 500, (response.status_code, response.text[:300])
        stored = server.store.get_traces(sent_valid)
    assert {span.trace_id for span in stored} == set(sent_valid)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        (
            b'{"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": '
            + b'{"arrayValue": {"values": [' * 20_000
            + b"]}}" * 20_000
            + b"}]}}]}"
        ),
    ],
    ids=["bare", "resource-spans", "attribute-value"],
)
def test_deeply_nested_json_is_a_400(body: bytes) -> None:
    """Nesting a hundred thousand levels deep is refused, not a crash or a RecursionError."""
    assert decodes_or_refuses(body, PayloadFormat.JSON) is None


def test_deeply_nested_protobuf_value_is_a_400() -> None:
    """An attribute value nested past protobuf's recursion limit is refused."""
    value = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(500):
        value = field(5, field(1, value))  # AnyValue.array_value, then ArrayValue.values
    attribute = field(1, b"deep") + field(2, value)  # KeyValue.key, KeyValue.value
    body = request_with_extra_span_bytes(field(9, attribute))  # Span.attributes
    assert decodes_or_refuses(body, PayloadFormat.PROTOBUF) is None

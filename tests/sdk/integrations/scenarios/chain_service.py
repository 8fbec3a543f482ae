"""One service of the end-to-end chain (tests/e2e/test_chain.py), chosen by its role.

Usage: chain_service.py <role> <name of this run> [<port of the next hop>]

    edge       HTTP (FastAPI) → asyncio fan-out → thread pool → RabbitMQ queue <name>
    worker     RabbitMQ queue <name> → Redis stream <name>
    relay      Redis stream <name> → NATS subject <name>
    fulfil     NATS subject <name> → gRPC Inventory/Reserve on 127.0.0.1:<port>
    inventory  gRPC server

Each prints one JSON line ({"port": N} or {"ready": true}) once it can take work.
"""

import asyncio
import json
import socket
import sys
from concurrent import futures
from typing import Any

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

ROLE, NAME = sys.argv[1], sys.argv[2]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
GRPC_METHOD = "/threadline.chain.Inventory/Reserve"
POLL_MS = 100

guard.raise_internal_errors(True)
threadline.configure(service_name=f"chain-{ROLE}")


def ready(**fields: Any) -> None:
    print(json.dumps(fields or {"ready": True}), flush=True)


def identity(value: bytes) -> bytes:
    return value


def edge() -> None:
    import fastapi
    import pika
    import uvicorn
    from opentelemetry import trace

    from threadline.sdk.concurrency import context_executor
    from threadline.sdk.integrations import rabbitmq

    app = fastapi.FastAPI()
    threadline.instrument(app)
    tracer = trace.get_tracer("chain.edge")
    # One thread owns the blocking AMQP connection: pika connections are not thread-safe.
    pool = context_executor(max_workers=1, thread_name_prefix="amqp")
    connection = pool.submit(lambda: pika.BlockingConnection(pika.URLParameters(AMQP_URL))).result()
    channel = pool.submit(connection.channel).result()
    pool.submit(lambda: channel.queue_declare(NAME, auto_delete=True)).result()

    def hand_off(order: str) -> str:
        with tracer.start_as_current_span("hand-off"):
            return rabbitmq.publish(channel, "", NAME, order.encode())

    async def price() -> int:
        with tracer.start_as_current_span("price"):
            await asyncio.sleep(0)
            return 42

    @app.post("/order")
    async def order() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        cost, message_id = await asyncio.gather(
            price(), loop.run_in_executor(pool, hand_off, "order-1")
        )
        return {"journey": current_journey(), "price": cost, "message_id": message_id}

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    ready(port=listener.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


def worker() -> None:
    import pika
    import redis

    from threadline.sdk.integrations import rabbitmq, redis_streams

    client = redis.Redis(host="127.0.0.1", port=6379)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.queue_declare(NAME, auto_delete=True)

    def on_message(ch: Any, method: Any, properties: Any, body: bytes) -> None:
        redis_streams.xadd(client, NAME, {"order": body})
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(NAME, rabbitmq.traced_callback(on_message))
    ready()
    channel.start_consuming()


async def relay() -> None:
    import nats
    import redis

    from threadline.sdk.integrations import nats as nats_tracing
    from threadline.sdk.integrations import redis_streams

    client = redis.Redis(host="127.0.0.1", port=6379)
    client.xgroup_create(NAME, "relay", id="0", mkstream=True)
    connection = await nats.connect("nats://127.0.0.1:4222")
    loop = asyncio.get_running_loop()
    sending: list[asyncio.Future[None]] = []
    ready()
    while True:
        batches = await loop.run_in_executor(
            None, lambda: client.xreadgroup("relay", "r1", {NAME: ">"}, count=10, block=POLL_MS)
        )
        for stream, entries in batches:
            sending.clear()

            def forward(entry_id: str, fields: Any) -> None:
                # The task copies the current context: its span is a child of this entry's.
                sending.append(
                    asyncio.ensure_future(nats_tracing.publish(connection, NAME, fields[b"order"]))
                )

            redis_streams.handle_entries(stream, entries, forward, record_receive=False)
            await asyncio.gather(*sending)
            client.xack(NAME, "relay", *(entry_id for entry_id, _ in entries))


async def fulfil() -> None:
    import grpc
    import nats

    from threadline.sdk.integrations import nats as nats_tracing

    threadline.instrument()  # gRPC client instrumentation, before the channel exists
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{sys.argv[3]}")
    reserve = channel.unary_unary(
        GRPC_METHOD, request_serializer=identity, response_deserializer=identity
    )

    async def on_message(msg: Any) -> None:
        await reserve(msg.data, timeout=10)

    connection = await nats.connect("nats://127.0.0.1:4222")
    await connection.subscribe(NAME, cb=nats_tracing.traced_handler(on_message))
    await connection.flush()
    ready()
    await asyncio.Event().wait()


def inventory() -> None:
    import grpc

    threadline.instrument()  # gRPC server instrumentation, before the server exists

    def reserve(request: bytes, context: Any) -> bytes:
        return json.dumps(current_journey()).encode()

    handler = grpc.unary_unary_rpc_method_handler(reserve, identity, identity)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("threadline.chain.Inventory", {"Reserve": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ready(port=port)
    server.wait_for_termination()


if ROLE == "edge":
    edge()
elif ROLE == "worker":
    worker()
elif ROLE == "relay":
    asyncio.run(relay())
elif ROLE == "fulfil":
    asyncio.run(fulfil())
elif ROLE == "inventory":
    inventory()
else:
    raise SystemExit(f"unknown role {ROLE!r}")

"""The message hop between orders and fulfillment: one tiny interface, two brokers.

RabbitMQ (through ``pika``) is used when a broker answers on 127.0.0.1:5672; otherwise
a broker-free queue in an SQLite file (``litequeue``) lets the demo run anywhere.
Both carry a message as string headers plus a body, which is all trace propagation
needs. Tracing itself lives in ``message_tracing``; this module only moves bytes.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import pika
import pika.exceptions
from litequeue import LiteQueue

from threadline.demo.wiring import ORDER_PLACED, BrokerPreference, BrokerSpec, BrokerSystem

logger = logging.getLogger(__name__)

RABBITMQ_HOST: Final = "127.0.0.1"
RABBITMQ_PORT: Final = 5672
# A connect attempt to a local broker either succeeds at once or nothing listens.
RABBITMQ_PROBE_TIMEOUT_S: Final = 0.5
# Each run publishes to its own queue so two demos sharing one broker never steal
# each other's orders; the broker deletes a queue left unused this long.
RABBITMQ_QUEUE_EXPIRY_MS: Final = 10 * 60 * 1000
# How long a consumer waits for a message before checking whether it should stop.
POLL_INTERVAL_S: Final = 0.05
# How long SQLite waits for the file lock before failing; orders and fulfillment
# write the same file from two processes.
SQLITE_BUSY_TIMEOUT_S: Final = 5.0
SQLITE_TABLE: Final = "order_placed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the consumer receives it."""

    message_id: str
    headers: Mapping[str, str]
    body: bytes


class MessageQueue(Protocol):
    """Publish to and consume from one destination of one broker."""

    @property
    def system(self) -> BrokerSystem:
        """`messaging.system` of the broker: "rabbitmq" or "sqlite"."""
        ...

    @property
    def destination(self) -> str:
        """The logical destination name, the same for every run."""
        ...

    def publish(self, headers: Mapping[str, str], body: bytes) -> str:
        """Send one message; returns its message id. Safe to call from many threads."""
        ...

    def consume(self, callback: Callable[[Delivery], None]) -> None:
        """Hand each message to ``callback`` until ``stop`` is called.

        A message whose callback raises is logged and dropped, not redelivered: the
        demo prefers losing one order to a worker stuck on it.
        """
        ...

    def stop(self) -> None:
        """Make a running ``consume`` return; safe to call from a signal handler."""
        ...

    def close(self) -> None: ...


def rabbitmq_reachable(host: str = RABBITMQ_HOST, port: int = RABBITMQ_PORT) -> bool:
    """True when something accepts TCP connections on the AMQP port."""
    try:
        with socket.create_connection((host, port), timeout=RABBITMQ_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


class BrokerUnavailable(RuntimeError):
    """RabbitMQ was asked for explicitly but does not answer."""


def choose_broker(preference: BrokerPreference, run_dir: Path, run_id: str) -> BrokerSpec:
    """Resolve the user's preference to a concrete broker and address for this run."""
    if preference == "rabbitmq" or (preference == "auto" and rabbitmq_reachable()):
        if not rabbitmq_reachable():
            raise BrokerUnavailable(
                f"RabbitMQ was requested but nothing answers on {RABBITMQ_HOST}:{RABBITMQ_PORT}"
            )
        return BrokerSpec("rabbitmq", f"{ORDER_PLACED}.{run_id}")
    return BrokerSpec("sqlite", str(run_dir / "order-queue.sqlite"))


def open_queue(spec: BrokerSpec) -> MessageQueue:
    if spec.system == "rabbitmq":
        return RabbitQueue(spec.address)
    return SqliteQueue(Path(spec.address))


class RabbitQueue:
    """A per-run RabbitMQ queue on the default exchange."""

    def __init__(
        self, queue_name: str, host: str = RABBITMQ_HOST, port: int = RABBITMQ_PORT
    ) -> None:
        self.queue_name = queue_name
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connection: Any = None
        self._channel: Any = None

    @property
    def system(self) -> BrokerSystem:
        return "rabbitmq"

    @property
    def destination(self) -> str:
        return ORDER_PLACED

    def publish(self, headers: Mapping[str, str], body: bytes) -> str:
        message_id = uuid.uuid4().hex
        properties = pika.BasicProperties(
            headers=dict(headers), message_id=message_id, content_type="application/json"
        )
        # A blocking pika connection is not thread-safe, and the orders service answers
        # requests on many threads: one lock, one connection.
        with self._lock:
            try:
                self._open_channel().basic_publish("", self.queue_name, body, properties)
            except pika.exceptions.AMQPError:
                # The connection broke (the broker restarted, say): reconnect once.
                self._drop_connection()
                self._open_channel().basic_publish("", self.queue_name, body, properties)
        return message_id

    def consume(self, callback: Callable[[Delivery], None]) -> None:
        channel = self._open_channel()
        channel.basic_qos(prefetch_count=10)
        for method, properties, body in channel.consume(
            self.queue_name, inactivity_timeout=POLL_INTERVAL_S
        ):
            if self._stopping.is_set():
                break
            if method is None:
                continue
            headers = {str(k): str(v) for k, v in (properties.headers or {}).items()}
            delivery = Delivery(properties.message_id or "", headers, body)
            try:
                callback(delivery)
            except Exception:
                logger.exception("dropping message %s: its handler failed", delivery.message_id)
            channel.basic_ack(method.delivery_tag)
        channel.cancel()

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self._drop_connection()

    def _open_channel(self) -> Any:
        if self._channel is None or not self._channel.is_open:
            # heartbeat=0: the publisher may sit idle between orders longer than a
            # heartbeat interval while nobody drives its I/O loop.
            parameters = pika.ConnectionParameters(self._host, self._port, heartbeat=0)
            self._connection = pika.BlockingConnection(parameters)
            self._channel = self._connection.channel()
            self._channel.queue_declare(
                self.queue_name, arguments={"x-expires": RABBITMQ_QUEUE_EXPIRY_MS}
            )
        return self._channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except pika.exceptions.AMQPError:
                logger.debug("broker connection was already broken", exc_info=True)


class SqliteQueue:
    """A queue in one SQLite file that two processes share; no broker to run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._queue: Any = LiteQueue(path, queue_name=SQLITE_TABLE, timeout=SQLITE_BUSY_TIMEOUT_S)

    @property
    def system(self) -> BrokerSystem:
        return "sqlite"

    @property
    def destination(self) -> str:
        return ORDER_PLACED

    def publish(self, headers: Mapping[str, str], body: bytes) -> str:
        envelope = json.dumps({"headers": dict(headers), "body": body.decode("utf-8")})
        # One sqlite3 connection shared by the request threads of the orders service.
        with self._lock:
            message = self._queue.put(envelope)
        return str(message.message_id)

    def consume(self, callback: Callable[[Delivery], None]) -> None:
        while not self._stopping.is_set():
            with self._lock:
                message = self._queue.pop()
            if message is None:
                self._stopping.wait(POLL_INTERVAL_S)
                continue
            envelope = json.loads(message.data)
            delivery = Delivery(
                str(message.message_id),
                {str(k): str(v) for k, v in envelope["headers"].items()},
                str(envelope["body"]).encode("utf-8"),
            )
            try:
                callback(delivery)
            except Exception:
                logger.exception("dropping message %s: its handler failed", delivery.message_id)
                with self._lock:
                    self._queue.mark_failed(message.message_id)
                continue
            with self._lock:
                self._queue.done(message.message_id)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        with self._lock:
            self._queue.conn.close()

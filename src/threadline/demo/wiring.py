"""How the orchestrator tells each shop process where its peers and its broker are.

The shop services are separate processes started with ``--port N``; everything else
they need travels as environment variables, declared once here so the orchestrator
that writes them and the services that read them cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

BrokerSystem = Literal["rabbitmq", "sqlite"]
BrokerPreference = Literal["auto", "rabbitmq", "sqlite"]
BROKER_PREFERENCES: Final[tuple[str, ...]] = get_args(BrokerPreference)

# Read by the orchestrator as the user's choice (auto|rabbitmq|sqlite) and written by it
# for the services as the broker actually chosen.
BROKER_ENV: Final = "THREADLINE_DEMO_BROKER"
# RabbitMQ: the queue name of this run; SQLite: the path of the queue file.
QUEUE_ADDRESS_ENV: Final = "THREADLINE_DEMO_QUEUE"
SEED_ENV: Final = "THREADLINE_DEMO_SEED"
CATALOG_URL_ENV: Final = "THREADLINE_DEMO_CATALOG_URL"
ORDERS_URL_ENV: Final = "THREADLINE_DEMO_ORDERS_URL"
PAYMENTS_URL_ENV: Final = "THREADLINE_DEMO_PAYMENTS_URL"

# The logical destination the orders service publishes to and fulfillment consumes.
ORDER_PLACED: Final = "order.placed"

# The simulated user's identity headers. The session header is the one the SDK turns
# into a journey by default; the user header is read by the gateway.
SESSION_HEADER: Final = "X-Session-Id"
USER_HEADER: Final = "X-User"
# The plan the simulated user is on, which the gateway stamps on its entry span
# (``app.plan``): journey maps and funnels can be filtered by it.
PLAN_HEADER: Final = "X-Plan"

# Every service answers here once it can take traffic; kept out of the traces.
HEALTH_PATH: Final = "/health"


class WiringError(RuntimeError):
    """A shop process was started without the environment the orchestrator provides."""


@dataclass(frozen=True, slots=True)
class BrokerSpec:
    """Which broker carries the order hop, and where: a queue name or a queue file."""

    system: BrokerSystem
    address: str

    def to_env(self) -> dict[str, str]:
        return {BROKER_ENV: self.system, QUEUE_ADDRESS_ENV: self.address}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrokerSpec:
        environ = os.environ if environ is None else environ
        system = environ.get(BROKER_ENV, "")
        address = environ.get(QUEUE_ADDRESS_ENV, "")
        if system == "rabbitmq":
            return cls("rabbitmq", address)
        if system == "sqlite":
            return cls("sqlite", address)
        raise WiringError(
            f"{BROKER_ENV} must be 'rabbitmq' or 'sqlite' in a shop process, got {system!r}"
        )


@dataclass(frozen=True, slots=True)
class ShopWiring:
    """Everything a shop service reads from its environment besides the SDK settings."""

    seed: int
    catalog_url: str
    orders_url: str
    payments_url: str
    broker: BrokerSpec

    def to_env(self) -> dict[str, str]:
        return {
            SEED_ENV: str(self.seed),
            CATALOG_URL_ENV: self.catalog_url,
            ORDERS_URL_ENV: self.orders_url,
            PAYMENTS_URL_ENV: self.payments_url,
            **self.broker.to_env(),
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ShopWiring:
        environ = os.environ if environ is None else environ
        missing = [
            key
            for key in (SEED_ENV, CATALOG_URL_ENV, ORDERS_URL_ENV, PAYMENTS_URL_ENV)
            if key not in environ
        ]
        if missing:
            raise WiringError(f"shop process started without {', '.join(missing)}")
        try:
            seed = int(environ[SEED_ENV])
        except ValueError as exc:
            raise WiringError(f"{SEED_ENV} must be an integer: {exc}") from exc
        return cls(
            seed=seed,
            catalog_url=environ[CATALOG_URL_ENV],
            orders_url=environ[ORDERS_URL_ENV],
            payments_url=environ[PAYMENTS_URL_ENV],
            broker=BrokerSpec.from_env(environ),
        )

"""The payments service (FastAPI): charges an order through one of two providers.

It is the demo's slow dependency and its failing path. About 15% of charges go to
the "legacy-bank" provider, which takes 2–3 s; about 10% fail because the
provider is unavailable (503), which the orders service and the gateway then
surface as errors. Which charge is slow or fails depends only on the seed and
the card it is paid with (which the simulated users draw from the same seed), so
a run with the same seed tells the same story.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Final

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import BaseModel

from threadline.demo.services import hosting
from threadline.demo.wiring import HEALTH_PATH, ShopWiring

SERVICE_NAME: Final = "payments"
PROVIDER_ATTRIBUTE: Final = "payment.provider"
SLOW_SHARE: Final = 0.15
FAILURE_SHARE: Final = 0.10
FAST_PROVIDER: Final = "fastpay"
SLOW_PROVIDER: Final = "legacy-bank"
FAST_TIME_S: Final = (0.01, 0.04)
# Far above the noise, so the summary's slowest step is the plant even on a busy
# machine: with 20 users on 2 cores at load ~10, no other span took more than ~0.7 s
# of its own time (bench/demo_plant.py prints the figures).
SLOW_TIME_S: Final = (2.0, 3.0)

_tracer = trace.get_tracer("threadline.demo.payments")


@dataclass(frozen=True, slots=True)
class ChargeDecision:
    provider: str
    delay_s: float
    fails: bool


def decide_charge(seed: int, card_token: str) -> ChargeDecision:
    """How a charge to ``card_token`` goes: the same answer for the same seed and card."""
    rng = random.Random(f"{seed}:{SERVICE_NAME}:{card_token}")
    slow = rng.random() < SLOW_SHARE
    delay_s = rng.uniform(*(SLOW_TIME_S if slow else FAST_TIME_S))
    return ChargeDecision(
        provider=SLOW_PROVIDER if slow else FAST_PROVIDER,
        delay_s=delay_s,
        fails=rng.random() < FAILURE_SHARE,
    )


class ChargeRequest(BaseModel):
    order_id: str
    amount_cents: int
    card_token: str


def create_app(wiring: ShopWiring) -> FastAPI:
    app = FastAPI(title="payments")

    @app.get(HEALTH_PATH)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/charges", status_code=201, response_model=None)
    async def charge(charge: ChargeRequest) -> dict[str, object] | JSONResponse:
        decision = decide_charge(wiring.seed, charge.card_token)
        trace.get_current_span().set_attribute(PROVIDER_ATTRIBUTE, decision.provider)
        with _tracer.start_as_current_span(
            "authorize payment",
            attributes={
                PROVIDER_ATTRIBUTE: decision.provider,
                "payment.amount_cents": charge.amount_cents,
            },
        ) as authorize:
            await asyncio.sleep(decision.delay_s)
            if decision.fails:
                # The HTTP instrumentation overwrites a server span's status description;
                # this span keeps the reason, so the trace says why the checkout failed.
                authorize.set_status(
                    Status(StatusCode.ERROR, f"provider {decision.provider} unavailable")
                )
        if decision.fails:
            return JSONResponse(
                {"error": f"payment provider {decision.provider} unavailable"}, status_code=503
            )
        return {
            "order_id": charge.order_id,
            "provider": decision.provider,
            "amount_cents": charge.amount_cents,
            "status": "captured",
        }

    return app


def main() -> None:
    hosting.run_web_service(SERVICE_NAME, create_app)


if __name__ == "__main__":
    main()

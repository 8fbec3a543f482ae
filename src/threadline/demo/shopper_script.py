"""The scripted shoppers: who goes how far along the checkout path, and the planted cause.

One script for the demo's simulated users and for the tests that check journey maps
and funnels. A shopper is numbered 0–199 (``SESSIONS``); their number says how many
steps of the four-step path (product page → cart → checkout → after paying) they take,
whether payments fails for them at checkout, and their plan:

- 0–9 stop after the product page;
- 10–69 meet a payments error at checkout; 10–54 (45) stop there, 55–69 (15) go on;
- 70–89 stop at checkout without an error (20);
- 90–199 go on to the last step.

So checkout is reached by 190, the last step by 125; of the 60 that met the error 45
stopped (75%), of the 130 that did not 20 (15.4%): 4.9× as often, the planted cause.
Shoppers 70–99 are on the ``trial`` plan, the others ``paid``: of the 30 trial
shoppers at checkout 20 stopped (66.7%), of the 160 paid ones 45 (28.1%), a weaker
cause than the payments error.

The tests' shoppers (``tests/support/journey_script.py``) take the path as written
(``web GET /product`` … ``web POST /pay``). The demo's users take it through the shop
(``DEMO_FUNNEL``): one who meets the error at checkout and goes on tries again with
another card, then looks at the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SESSIONS: Final = 200
STEPS: Final = 4
# The attribute (on the entry span) that says which plan a shopper is on.
PLAN_ATTRIBUTE: Final = "app.plan"
# The demo's path through the gateway, as its entry operations (route templates).
DEMO_FUNNEL: Final = (
    "GET /products/{product_id}",
    "POST /cart",
    "POST /checkout",
    "GET /orders/{order_id}",
)
DEMO_FUNNEL_NAME: Final = "checkout"
# Consecutive journeys of a user are this far apart in the script (coprime to
# ``SESSIONS``): any run of journeys samples every group, not shoppers 0, 1, 2, ...
_STRIDE: Final = 77
_USER_STRIDE: Final = 67


@dataclass(frozen=True, slots=True)
class Shopper:
    """What the script says of one shopper."""

    number: int
    steps: int  # how many of the ``STEPS`` steps they take
    meets_error: bool  # payments fails for them at checkout (step 3)
    plan: str

    @property
    def retries_checkout(self) -> bool:
        """Met the error and still goes on: in the shop, a second checkout is needed."""
        return self.meets_error and self.steps == STEPS


def shopper(number: int) -> Shopper:
    """Shopper ``number`` (taken modulo ``SESSIONS``)."""
    n = number % SESSIONS
    meets_error = 10 <= n < 70
    if n < 10:
        steps = 1
    elif n < 55 or 70 <= n < 90:
        steps = 3
    else:
        steps = STEPS
    return Shopper(n, steps, meets_error, "trial" if 70 <= n < 100 else "paid")


def demo_shopper(seed: int, user: int, journey: int) -> Shopper:
    """The shopper a demo user plays on their ``journey``-th journey (from 0)."""
    return shopper(seed + user * _USER_STRIDE + journey * _STRIDE)


def demo_funnel_toml() -> str:
    """The demo's ``[[funnel]]`` table, for the server's ``threadline.toml``."""
    steps = ", ".join(f'"{step}"' for step in DEMO_FUNNEL)
    return f'[[funnel]]\nname = "{DEMO_FUNNEL_NAME}"\nsteps = [{steps}]\n'

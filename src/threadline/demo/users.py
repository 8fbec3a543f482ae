"""Simulated users: each one a thread walking the shop, journey after journey.

A journey is one session following ``shopper_script``: browse, look at a product,
and as far as the script's shopper goes, add it to the cart, check out and look at
the order, with a short think time between steps. The script plants the cause the
journey map finds: a shopper who meets a payments error at checkout (their card is
one payments fails) mostly leaves; one who goes on tries another card. Every request
carries the session id, the user's name and the shopper's plan in headers, as a
browser front-end would. The plan of each journey (the script's shopper, product,
pauses, the card) comes from ``--seed`` and the user's number, so the same seed
replays the same users with the same outcomes; how many journeys fit in the time
depends on the clock. Session ids are new each run.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx

from threadline.demo.services.payments import decide_charge
from threadline.demo.shopper_script import STEPS, Shopper, demo_shopper
from threadline.demo.wiring import PLAN_HEADER, SESSION_HEADER, USER_HEADER

THINK_TIME_S: Final = (0.05, 0.3)
# Long enough for the slowest checkout (a slow charge behind two hops).
REQUEST_TIMEOUT_S: Final = 10.0
NAMES: Final = (
    "ada", "alan", "barbara", "edsger", "frances", "grace", "hedy", "john",
    "katherine", "ken", "linus", "margaret", "niklaus", "radia", "tim", "vint",
)  # fmt: skip

Outcome = Literal["ordered", "checkout_failed", "abandoned", "cut_short"]


def user_name(index: int) -> str:
    """Readable, unique user ids: ada, alan, …, then ada2, alan2, …"""
    lap, position = divmod(index, len(NAMES))
    return NAMES[position] + (str(lap + 1) if lap else "")


@dataclass(frozen=True, slots=True)
class JourneyRecord:
    """What one simulated journey did, for tests and the summary to check against."""

    user_id: str
    session_id: str
    requests: int
    errors: int
    outcome: Outcome
    # The script's shopper this journey played, and the entry operations it requested
    # in order (the journey's steps as the map shows them).
    shopper: Shopper | None = None
    steps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts so far, for the progress display."""

    requests: int
    errors: int
    journeys: int
    users_active: int


class UserDriver:
    """Runs ``users`` simulated users against the gateway until ``duration_s`` is up."""

    def __init__(self, gateway_url: str, users: int, duration_s: float, seed: int) -> None:
        self._gateway_url = gateway_url
        self._users = users
        self._duration_s = duration_s
        self._seed = seed
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests = 0
        self._errors = 0
        self._records: list[JourneyRecord] = []
        self._threads: list[threading.Thread] = []
        self._deadline = 0.0

    def start(self) -> None:
        self._deadline = time.monotonic() + self._duration_s
        for index in range(self._users):
            thread = threading.Thread(
                target=self._run_user, args=(index,), name=f"user-{index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Ask every user to leave after the request they are making."""
        self._stopping.set()

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def tally(self) -> Tally:
        with self._lock:
            return Tally(
                requests=self._requests,
                errors=self._errors,
                journeys=len(self._records),
                users_active=sum(t.is_alive() for t in self._threads),
            )

    def records(self) -> tuple[JourneyRecord, ...]:
        with self._lock:
            return tuple(self._records)

    def _over(self) -> bool:
        return self._stopping.is_set() or time.monotonic() >= self._deadline

    def _run_user(self, index: int) -> None:
        rng = random.Random(f"{self._seed}:user:{index}")
        user_id = user_name(index)
        with httpx.Client(base_url=self._gateway_url, timeout=REQUEST_TIMEOUT_S) as client:
            # Users arrive over the first second instead of all in the same instant.
            self._stopping.wait(rng.uniform(0.0, 1.0))
            number = 0
            while not self._over():
                # Fresh for every run, unlike the plan: two runs storing into the same
                # file must not merge into one journey.
                session_id = str(uuid.uuid4())
                plan = demo_shopper(self._seed, index, number)
                journey = _Journey(
                    client, rng, self._seed, plan, (user_id, session_id), self._pause, self._count
                )
                record = journey.walk()
                number += 1
                with self._lock:
                    self._records.append(record)

    def _pause(self, seconds: float) -> bool:
        """Think like a person would; False when the run is over."""
        self._stopping.wait(seconds)
        return not self._over()

    def _count(self, failed: bool) -> None:
        with self._lock:
            self._requests += 1
            self._errors += failed


class _Journey:
    """One session of one user playing ``shopper``; ``walk`` runs it and says how it ended."""

    def __init__(
        self,
        client: httpx.Client,
        rng: random.Random,
        seed: int,
        shopper: Shopper,
        who: tuple[str, str],
        pause: Callable[[float], bool],
        count: Callable[[bool], None],
    ) -> None:
        self._pause = pause
        self._count = count
        self._client = client
        self._shopper = shopper
        self._user_id, self._session_id = who
        self._requests = 0
        self._errors = 0
        self._steps: list[str] = []
        # Drawn up front so the plan does not depend on what the shop answers.
        self._pick = rng.random()
        self._quantity = rng.randint(1, 2)
        self._pauses = [rng.uniform(*THINK_TIME_S) for _ in range(STEPS + 2)]
        # Payments decides from the seed and the card whether a charge fails (and is
        # slow): the shopper pays with a card that fails exactly when the script says.
        self._cards = [_card(rng, seed, fails=shopper.meets_error)]
        if shopper.retries_checkout:
            self._cards.append(_card(rng, seed, fails=False))

    def walk(self) -> JourneyRecord:
        outcome = self._walk()
        return JourneyRecord(
            self._user_id,
            self._session_id,
            self._requests,
            self._errors,
            outcome,
            self._shopper,
            tuple(self._steps),
        )

    def _walk(self) -> Outcome:
        pauses = iter(self._pauses)
        catalog = self._request("GET /browse", "GET", "/browse")
        products: list[Any] = (catalog or {}).get("products") or []
        if not products or not self._pause(next(pauses)):
            return "cut_short"
        product_id = products[int(self._pick * len(products))]["id"]
        self._request("GET /products/{product_id}", "GET", f"/products/{product_id}")
        if self._shopper.steps < 2:
            return "abandoned"
        if not self._pause(next(pauses)):
            return "cut_short"
        line = {"product_id": product_id, "quantity": self._quantity}
        self._request("POST /cart", "POST", "/cart", line)
        order = None
        for card in self._cards:
            if not self._pause(next(pauses)):
                return "cut_short"
            order = self._request("POST /checkout", "POST", "/checkout", {"card_token": card})
        if order is None:
            return "checkout_failed"
        if self._shopper.steps == STEPS:
            if not self._pause(next(pauses)):
                return "cut_short"
            order_id = quote(str(order["order_id"]), safe="")
            self._request("GET /orders/{order_id}", "GET", f"/orders/{order_id}")
        return "ordered"

    def _request(self, step: str, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer, or None when the request failed (and was counted so)."""
        headers = {
            SESSION_HEADER: self._session_id,
            USER_HEADER: self._user_id,
            PLAN_HEADER: self._shopper.plan,
        }
        self._requests += 1
        self._steps.append(step)
        try:
            response = self._client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError:
            failed, answer = True, None
        else:
            failed = response.status_code >= 400
            answer = None if failed else response.json()
        self._errors += failed
        self._count(failed)
        return answer


def _card(rng: random.Random, seed: int, *, fails: bool) -> str:
    """A card token whose charge fails (or goes through) as asked; about one draw in
    ten fails, so a few draws find either."""
    while True:
        token = f"tok_{rng.getrandbits(48):012x}"
        if decide_charge(seed, token).fails == fails:
            return token

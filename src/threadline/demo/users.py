"""Simulated users: each one a thread walking the shop, journey after journey.

A journey is one session: browse, look at a few products, add them to the cart and
(most of the time) check out, with a short think time between steps. Every request
carries the session id and the user's name in headers, as a browser front-end
would. The plan of each journey (products, quantities, pauses, whether to check
out, the card it pays with) comes from a generator seeded by ``--seed`` and the
user's number, so the same seed replays the same users with the same outcomes; how
many journeys fit in the time depends on the clock. Session ids are new each run.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx

from threadline.demo.wiring import SESSION_HEADER, USER_HEADER

THINK_TIME_S: Final = (0.05, 0.3)
PRODUCTS_PER_JOURNEY: Final = (1, 3)
ABANDON_SHARE: Final = 0.1
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
            while not self._over():
                # Fresh for every run, unlike the plan: two runs storing into the same
                # file must not merge into one journey.
                session_id = str(uuid.uuid4())
                journey = _Journey(client, rng, user_id, session_id, self._pause, self._count)
                record = journey.walk()
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
    """One session of one user; ``walk`` runs it and says how it ended."""

    def __init__(
        self,
        client: httpx.Client,
        rng: random.Random,
        user_id: str,
        session_id: str,
        pause: Callable[[float], bool],
        count: Callable[[bool], None],
    ) -> None:
        self._pause = pause
        self._count = count
        self._client = client
        self._rng = rng
        self._user_id = user_id
        self._session_id = session_id
        self._requests = 0
        self._errors = 0
        # Drawn up front so the plan does not depend on what the shop answers.
        self._wanted = rng.randint(*PRODUCTS_PER_JOURNEY)
        self._picks = [rng.random() for _ in range(self._wanted)]
        self._quantities = [rng.randint(1, 2) for _ in range(self._wanted)]
        self._pauses = [rng.uniform(*THINK_TIME_S) for _ in range(2 * self._wanted + 2)]
        self._checks_out = rng.random() >= ABANDON_SHARE
        # The payment method decides whether the charge is slow or fails (see payments).
        self._card_token = f"tok_{rng.getrandbits(48):012x}"

    def walk(self) -> JourneyRecord:
        outcome = self._steps()
        return JourneyRecord(self._user_id, self._session_id, self._requests, self._errors, outcome)

    def _steps(self) -> Outcome:
        pauses = iter(self._pauses)
        catalog = self._request("GET", "/browse")
        products: list[Any] = (catalog or {}).get("products") or []
        if not products:
            return "cut_short"
        for pick, quantity in zip(self._picks, self._quantities, strict=True):
            if not self._pause(next(pauses)):
                return "cut_short"
            product_id = products[int(pick * len(products))]["id"]
            self._request("GET", f"/products/{product_id}")
            if not self._pause(next(pauses)):
                return "cut_short"
            self._request("POST", "/cart", {"product_id": product_id, "quantity": quantity})
        if not self._checks_out:
            return "abandoned"
        if not self._pause(next(pauses)):
            return "cut_short"
        paid = self._request("POST", "/checkout", {"card_token": self._card_token})
        return "ordered" if paid is not None else "checkout_failed"

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer, or None when the request failed (and was counted so)."""
        headers = {SESSION_HEADER: self._session_id, USER_HEADER: self._user_id}
        self._requests += 1
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

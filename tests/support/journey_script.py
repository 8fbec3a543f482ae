"""Scripted shoppers with a planted cause: a payments error at checkout makes them leave.

200 sessions walk ``GET /product`` → ``POST /cart`` → ``POST /checkout`` → ``POST /pay``
(20 s apart, each step a ``web`` trace calling ``payments``):

- sessions 0–9 stop after the product page;
- sessions 10–69 meet a payments error at checkout; 10–54 (45) stop there;
- sessions 70–89 stop at checkout without an error (20);
- sessions 90–199 pay.

So checkout is reached by 190, pay by 125; of the 60 that met the error 45 stopped
(75%), of the 130 that did not 20 (15.4%): 4.9× as often.

Every ``web`` span carries the shopper's plan, ``app.plan``: ``trial`` for sessions
70–99, ``paid`` for the others. Of the 30 trial shoppers at checkout 20 stopped
(66.7%), of the 160 paid ones 45 (28.1%): 2.4× as often, a weaker cause than the
payments error.
"""

from __future__ import annotations

from typing import Final

from support.spans import span_record
from threadline.server.model import SpanKind, SpanRecord, StatusCode

S: Final = 1_000_000_000
MS: Final = 1_000_000
T0: Final = 1_700_000_000 * S
SESSIONS: Final = 200
FUNNEL: Final = ("GET /product", "POST /cart", "POST /checkout", "POST /pay")
WINDOW_END_MS: Final = (T0 + 3600 * S) // MS


def steps_of(session: int) -> tuple[int, bool]:
    """How many funnel steps session ``session`` takes, and whether payments fails."""
    met_error = 10 <= session < 70
    if session < 10:
        return 1, False
    if session < 55 or 70 <= session < 90:
        return 3, met_error
    return 4, met_error


def plan_of(session: int) -> str:
    """The plan session ``session``'s shopper is on."""
    return "trial" if 70 <= session < 100 else "paid"


def shoppers() -> list[SpanRecord]:
    records: list[SpanRecord] = []
    for session in range(SESSIONS):
        taken, met_error = steps_of(session)
        for k in range(taken):
            trace = f"{session:016x}{k:016x}"
            start = T0 + session * 10 * S + k * 20 * S
            failing = met_error and FUNNEL[k] == "POST /checkout"
            status = StatusCode.ERROR if failing else StatusCode.UNSET
            records += [
                span_record(trace, "r", None, "web", FUNNEL[k], start, start + 100 * MS,
                            session_id=f"shopper-{session}", user_id=f"user-{session}",
                            attributes={"app.plan": plan_of(session)}),
                span_record(trace, "p", "r", "payments", "authorize", start + 10 * MS,
                            start + 60 * MS, kind=SpanKind.SERVER, status=status,
                            session_id=f"shopper-{session}"),
            ]  # fmt: skip
    return records

"""Scripted shoppers with a planted cause: a payments error at checkout makes them leave.

The script is ``threadline.demo.shopper_script``'s (the demo's users follow it too):
200 sessions walk ``GET /product`` → ``POST /cart`` → ``POST /checkout`` → ``POST /pay``
(20 s apart, each step a ``web`` trace calling ``payments``); checkout is reached by
190, pay by 125; of the 60 that met the payments error 45 stopped, of the 130 that
did not 20: 4.9× as often. Every ``web`` span carries the shopper's plan,
``app.plan``: trial shoppers (70–99) stop at checkout 2.4× as often, a weaker cause.
"""

from __future__ import annotations

from typing import Final

from support.spans import span_record
from threadline.demo.shopper_script import PLAN_ATTRIBUTE, SESSIONS, shopper
from threadline.server.model import SpanKind, SpanRecord, StatusCode

S: Final = 1_000_000_000
MS: Final = 1_000_000
T0: Final = 1_700_000_000 * S
FUNNEL: Final = ("GET /product", "POST /cart", "POST /checkout", "POST /pay")
WINDOW_END_MS: Final = (T0 + 3600 * S) // MS


def shoppers() -> list[SpanRecord]:
    records: list[SpanRecord] = []
    for session in range(SESSIONS):
        plan = shopper(session)
        for k in range(plan.steps):
            trace = f"{session:016x}{k:016x}"
            start = T0 + session * 10 * S + k * 20 * S
            failing = plan.meets_error and FUNNEL[k] == "POST /checkout"
            status = StatusCode.ERROR if failing else StatusCode.UNSET
            records += [
                span_record(trace, "r", None, "web", FUNNEL[k], start, start + 100 * MS,
                            session_id=f"shopper-{session}", user_id=f"user-{session}",
                            attributes={PLAN_ATTRIBUTE: plan.plan}),
                span_record(trace, "p", "r", "payments", "authorize", start + 10 * MS,
                            start + 60 * MS, kind=SpanKind.SERVER, status=status,
                            session_id=f"shopper-{session}"),
            ]  # fmt: skip
    return records

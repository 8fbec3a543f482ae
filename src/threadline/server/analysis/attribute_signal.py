"""Which attribute values say something about slow (or failed) requests, and which are noise.

Comparing the values that focus traces (slow or failed) carry with the values the
rest carry finds causes — a payment provider, a host, a region — but also finds
values that merely differ between any two requests. This module holds the rules
that tell them apart; ``tail_latency.rank_attributes`` applies them.

**Keys that are never ranked**, because their values belong to one request or one
connection and so cannot be what many slow requests share:

- per-connection keys by name: the client side's ephemeral port
  (``net.peer.port``, ``client.port``, ...), new for every connection;
- per-request keys by name: message ids and conversation ids;
- any key whose values are (nearly) unique per trace, by counting: at least
  ``UNIQUE_MIN_VALUES`` distinct values and at least ``UNIQUE_VALUE_SHARE`` of the
  traces carrying the key having a value of their own — full URLs with ids in
  them, timestamps, request ids, order numbers.

**Per-person keys** (``user.id``, ``session.id``, ...) are not listed value by
value: a user is not a cause, but slow requests that gather on a few users are a
finding. Their significant values are summarised as one *concentration*
("concentrated in 3 users").

**Support and significance.** A value is listed only when it is on at least
``min_support`` focus traces *and* at least ``MIN_FOCUS_SHARE`` of the focus
sample, and when one-sided **Fisher's exact test** says a share that much larger
than the baseline's is unlikely by chance, among all the values tested at once
(``discoveries``: the Benjamini–Hochberg procedure, which keeps the expected share
of flukes among the listed values under ``ALPHA``), so that testing hundreds of
values does not list a handful of flukes. Fisher's test is exact at the small
counts this often sees (five slow traces of twenty), where a z-test's normal
approximation is not.

Why Benjamini–Hochberg and not Bonferroni (each p below ``ALPHA`` divided by the values
tested): Bonferroni bounds the chance that the list holds any fluke at all, and pays for
it in power: every value is held to the strictest bar, ``ALPHA`` divided by the values
tested. On the benchmark's shop at 1M spans, a sample of 2,000 traces left out a host
that the full scan of every trace lists (``docs/performance.md``, "Fewer flukes
expected, not none"). A list read from the top wants the share of flukes in it bounded,
which is what Benjamini and Hochberg's step-up procedure bounds: the value with the
smallest p is held to Bonferroni's bar, the k-th smallest to k times it, and every value
up to the last one under its bar is listed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from threadline import conventions

# The ephemeral port of the peer that opened the connection: a new value per
# connection (stable and older semantic conventions; network.peer.port is the
# client's port on a SERVER span).
PER_CONNECTION_KEYS: Final = frozenset(
    {
        "net.peer.port",
        "net.sock.peer.port",
        "network.peer.port",
        "client.port",
        "client.socket.port",
        "source.port",
    }
)
# Ids of one message or exchange: a value per request by definition.
PER_REQUEST_KEYS: Final = frozenset(
    {
        conventions.MESSAGING_MESSAGE_ID,
        "messaging.message.conversation_id",
        "http.request.id",
        "request.id",
    }
)
# Keys naming a person or their visit, and what their values are called in a summary.
PER_PERSON_KEYS: Final[Mapping[str, str]] = {
    conventions.USER_ID: "users",
    "enduser.id": "users",
    conventions.SESSION_ID: "sessions",
    conventions.JOURNEY_ID: "journeys",
}
# A key with at least this many distinct values over the sample ...
UNIQUE_MIN_VALUES: Final = 20
# ... on at least half as many traces as carry it is an identifier, not a property:
# half is far above any real property (a few hosts, providers or routes over
# thousands of traces) and far below ids (one value per trace, or per retry pair).
UNIQUE_VALUE_SHARE: Final = 0.5
# Least share of the focus sample a listed value must be on: a value on 2% of slow
# requests does not explain the slow requests, however unusual it is.
MIN_FOCUS_SHARE: Final = 0.05
# The false discovery rate the listed values are held to (``discoveries``).
ALPHA: Final = 0.01


def noise_reason(key: str, key_values: int, key_traces: int) -> str | None:
    """Why values of ``key`` are never ranked, or ``None`` when they may be.

    ``key_values`` and ``key_traces`` are the distinct values of the key and the
    traces carrying it over the sample (0 when unknown: no cardinality rule).
    """
    if key in PER_CONNECTION_KEYS:
        return "per connection"
    if key in PER_REQUEST_KEYS:
        return "per request"
    if key_values >= UNIQUE_MIN_VALUES and key_values >= UNIQUE_VALUE_SHARE * key_traces:
        return "unique per request"
    return None


def supported(focus_traces: int, focus_sample: int, min_support: int) -> bool:
    """True when a value is on enough focus traces, in number and in share, to be listed."""
    return focus_traces >= min_support and focus_traces >= MIN_FOCUS_SHARE * focus_sample


def fisher_greater(
    focus_traces: int, focus_sample: int, baseline_traces: int, baseline_sample: int
) -> float:
    """One-sided Fisher's exact test: P(this many or more focus traces carry the value by chance).

    The 2×2 table is (carrying, not carrying) × (focus, baseline); under the null
    hypothesis the carriers fall in the focus group as draws without replacement
    (hypergeometric), and the p-value is the upper tail from the observed count.
    """
    total = focus_sample + baseline_sample
    carriers = focus_traces + baseline_traces
    if not 0 <= focus_traces <= focus_sample or not 0 <= baseline_traces <= baseline_sample:
        raise ValueError("trace counts must lie between 0 and their group's size")
    if carriers == 0 or focus_sample == 0:
        return 1.0
    table = _Table(total, carriers, focus_sample)
    mode = (focus_sample + 1) * (carriers + 1) // (total + 2)
    if focus_traces > mode:
        # Past the mode the terms only shrink: the upper tail, summed until the rest
        # cannot matter.
        return min(1.0, table.tail(focus_traces, step=1))
    # At or below the mode the upper tail is most of the mass: one minus the lower
    # tail, whose terms shrink from ``focus_traces - 1`` down.
    return max(0.0, min(1.0, 1.0 - table.tail(focus_traces - 1, step=-1)))


def discoveries(p_values: Sequence[float], tested: int | None = None) -> list[bool]:
    """Which of ``p_values`` pass the Benjamini–Hochberg procedure at ``ALPHA``: sorted,
    the k-th smallest of ``tested`` must lie below ``k × ALPHA / tested``, and every
    value up to the last one that does passes. ``tested`` (at least the values given;
    by default as many): values tested whose p-values are not given (they count
    against the bar as values that pass nothing)."""
    count = len(p_values) if tested is None else tested
    if count < len(p_values):
        raise ValueError(f"tested must count every p-value given: {count} < {len(p_values)}")
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    passing = 0
    for rank, index in enumerate(order, 1):
        if p_values[index] < ALPHA * rank / count:
            passing = rank
    found = [False] * len(p_values)
    for index in order[:passing]:
        found[index] = True
    return found


# The tail is summed until the terms left cannot move it by more than this share.
_TAIL_PRECISION: Final = 1e-17


class _Table:
    """The hypergeometric law of the focus carriers: ``drawn`` focus traces among
    ``carriers`` of ``total``, the focus group being ``focus`` of them."""

    __slots__ = ("carriers", "focus", "total")

    def __init__(self, total: int, carriers: int, focus: int) -> None:
        self.total, self.carriers, self.focus = total, carriers, focus

    def log_probability(self, drawn: int) -> float:
        return (
            _log_choose(self.carriers, drawn)
            + _log_choose(self.total - self.carriers, self.focus - drawn)
            - _log_choose(self.total, self.focus)
        )

    def ratio(self, drawn: int) -> float:
        """P(drawn + 1) / P(drawn)."""
        carriers, focus = self.carriers, self.focus
        return ((carriers - drawn) * (focus - drawn)) / (
            (drawn + 1) * (self.total - carriers - focus + drawn + 1)
        )

    def tail(self, start: int, *, step: int) -> float:
        """P(start) + P(start + step) + ... over the possible counts, ``start`` on the
        side of the mode where each term is smaller than the one before.

        Each term comes from the one before by the ratio of consecutive probabilities
        (one lgamma triple for the first, not one per term), and the sum stops once the
        terms left, bounded by a geometric series (the ratio only shrinks), are below
        ``_TAIL_PRECISION`` of it.
        """
        low = max(0, self.focus - (self.total - self.carriers))
        high = min(self.carriers, self.focus)
        if not low <= start <= high:
            return 0.0
        term, total, drawn = 1.0, 1.0, start
        while low <= drawn + step <= high:
            ratio = self.ratio(drawn) if step > 0 else 1.0 / self.ratio(drawn - 1)
            term *= ratio
            total += term
            drawn += step
            if ratio < 1.0 and term * ratio / (1.0 - ratio) < total * _TAIL_PRECISION:
                break
        return math.exp(self.log_probability(start)) * total


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

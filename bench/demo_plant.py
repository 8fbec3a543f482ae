"""How far the demo's planted slow dependency stands above the noise, on this machine.

Run: ``python bench/demo_plant.py [--users N] [--duration S] [--max-traces N]``

Starts the demo stack (server and five shop processes) on free loopback ports over a
fresh DuckDB file, lets ``--users`` simulated users shop for ``--duration`` seconds,
then reads back at most ``--max-traces`` traces of the run. For every span it takes the
self time (duration minus children): the planted spans are the payments service's
``authorize payment`` through the slow provider, the noise is every other span. It
prints the noise's p50 / p99 / max, the plant's min / p50, and the ratio min plant ÷
max noise: above 1 the slowest step of a journey that met the plant is the plant, so
the demo's summary names it. Run it while the machine is busy to see the worst case.
Every loop is bounded by its count; the stack is stopped when the run ends.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from threadline.demo.processes import free_port
from threadline.demo.run import wait_for_spans_to_settle
from threadline.demo.services.payments import PROVIDER_ATTRIBUTE, SLOW_PROVIDER
from threadline.demo.stack import running_stack
from threadline.demo.users import UserDriver

USERS_FINISH_S = 20.0


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--max-traces", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "plant.duckdb"
        with running_stack(port=free_port(), db=db, seed=args.seed, broker="sqlite") as stack:
            driver = UserDriver(stack.gateway_url, args.users, args.duration, args.seed)
            driver.start()
            driver.join(args.duration + USERS_FINISH_S)
            driver.stop()
            wait_for_spans_to_settle(stack.server_url)
            noise: list[float] = []
            plant: list[float] = []
            with httpx.Client(base_url=f"{stack.server_url}/api", timeout=30) as api:
                listed = api.get("/traces", params={"limit": min(1000, args.max_traces)}).json()
                for summary in listed["traces"][: args.max_traces]:
                    for span in api.get(f"/traces/{summary['trace_id']}").json()["spans"]:
                        planted = (
                            span["name"] == "authorize payment"
                            and span["attributes"].get(PROVIDER_ATTRIBUTE) == SLOW_PROVIDER
                        )
                        (plant if planted else noise).append(float(span["self_time_ms"]))
    print(f"users {args.users}, duration {args.duration:g} s, spans read {len(noise) + len(plant)}")
    print(
        f"noise self time ms: p50 {_quantile(noise, 0.5):.1f}  p99 {_quantile(noise, 0.99):.1f}"
        f"  max {max(noise):.1f}"
    )
    if not plant:
        print("no charge went through the slow provider in this run; run longer")
        return
    print(
        f"plant self time ms: min {min(plant):.1f}  p50 {statistics.median(plant):.1f}"
        f"  ({len(plant)} slow charges)"
    )
    print(f"ratio min plant / max noise: {min(plant) / max(noise):.2f}")
    print(f"ratio min plant / p99 noise: {min(plant) / _quantile(noise, 0.99):.2f}")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"took {time.monotonic() - started:.1f} s")

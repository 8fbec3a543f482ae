"""Scenario: spans finished before the process ends are exported without shutdown().

Usage: exit_flush.py atexit | sigterm | host-handler
- atexit: finish a span, return from the script (normal interpreter exit);
- sigterm: finish a span, print a ready line, wait to be sent SIGTERM;
- host-handler: the host installs a SIGTERM handler first; prints whether it is kept.
"""

import json
import signal
import sys
import time
from types import FrameType

from opentelemetry import trace

import threadline

mode = sys.argv[1]


def host_handler(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if mode == "host-handler":
    signal.signal(signal.SIGTERM, host_handler)

# A minute between exports: only an exit-time flush can deliver the span in time.
threadline.configure(service_name=f"exit-{mode}", export_delay_ms=60_000)
with trace.get_tracer("scenario").start_as_current_span(f"before-{mode}"):
    pass

if mode == "sigterm":
    print(json.dumps({"ready": True}), flush=True)
    time.sleep(60)
elif mode == "host-handler":
    print(json.dumps({"handler_kept": signal.getsignal(signal.SIGTERM) is host_handler}))
else:
    print(json.dumps({"exited": "normally"}))

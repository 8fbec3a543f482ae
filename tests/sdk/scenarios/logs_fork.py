"""Scenario: a process configured with ``logs=True`` forks; the child logs and exits.

The child's log pipeline is its own (fresh queue, counters and worker): its record is
exported with the child's ``process.pid``. Prints both pids and whether the child's
pipeline drained.
"""

import json
import logging
import os

from opentelemetry import trace

import threadline
from threadline.sdk.log_export.setup import active_handler

threadline.configure(service_name="forking", logs=True, export_delay_ms=50, stats_interval_s=0)
log = logging.getLogger("forking")
log.warning("from the parent")
handler = active_handler()
assert handler is not None
assert handler.drain(30.0)

pid = os.fork()
if pid == 0:  # the child
    code = 1
    try:
        with trace.get_tracer("t").start_as_current_span("child work"):
            log.warning("from the child %d", os.getpid())
        child = active_handler()
        drained = child is not None and child.drain(30.0)
        exported = child.stats().exported if child is not None else 0
        code = 0 if drained and exported == 1 else 2
        threadline.shutdown()
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
threadline.shutdown()
print(json.dumps({"child_pid": pid, "parent_pid": os.getpid(), "child_status": status}))

"""Scenario: ``configure(logs=True)`` with ``logs_level`` from the environment (or its
default); logs one record at each of INFO, WARNING and ERROR, and prints nothing but
``{}`` once they are sent."""

import json
import logging

import threadline

threadline.configure(service_name="levels", logs=True, export_delay_ms=50, stats_interval_s=0)
log = logging.getLogger("levels")
log.info("at info")
log.warning("at warning")
log.error("at error")
threadline.shutdown()
print(json.dumps({}))

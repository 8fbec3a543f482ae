"""Scheduled drills: probes defined on the server, run on their interval, judged,
stored, shown on the drills page, and alerting when propagation breaks.

- ``probe_document``: the probe document, kept in the store (``/api/probes``,
  ``[[probe]]`` tables);
- ``record``: one run's result as the store keeps it;
- ``traces``: the runner's trace reads, straight from the store;
- ``scheduler``: the thread that runs each probe on its interval;
- ``alerts``: a failing drill's alert, through the SLO alerts' receivers;
- ``routes`` and ``wiring``: the API and the app's startup and shutdown.

The probing itself (plan, sending, verdict) is ``threadline.probing``, shared with the
command line; this room only schedules it and keeps what it found.
"""

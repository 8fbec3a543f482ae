"""Fault drills: a named failure scenario run against a live fleet while synthetic
journeys flow, and a report of what each SDK dropped and retried, whether propagation
held and whether users waited longer (``threadline drill``, docs/probes.md).

Shared ground like ``probing``: it imports neither the SDK nor the server, and talks
to the services and the server over HTTP through its caller.
"""

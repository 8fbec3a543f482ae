"""Probes: synthetic journeys sent into real entry points, and the verdict on their traces.

Shared ground between the command line (``threadline probe``), the pytest fixture in
``threadline.testing`` and the server's scheduled drills: it imports neither the SDK nor
the server. ``plan`` reads what to send and what to expect; ``verdict`` is the pure
check of the traces that arrived; ``runner`` sends the steps and fetches the traces
over HTTP with the standard library.
"""

"""Python ``logging`` records exported as OTLP logs (``configure(logs=True)``).

``handler`` captures a record on the caller's thread (a context read and a deque
append), ``encoder`` writes the OTLP bytes on the worker, which ``worker`` runs with
the span pipeline's bounded queue, retrying exporter and fork handling, but with a
queue and counters of its own: a flood of log lines never takes a span's place.
"""

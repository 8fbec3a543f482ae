"""The latency bucket of a duration in SQL, as ``analysis.sketch`` numbers its buckets.

Every histogram kept at ingest (operations, edges, queue dwell, think times) and every
read that picks buckets (thresholds, funnels) computes it the same way, here.
"""

from __future__ import annotations

from threadline.server.analysis import sketch


def bucket_sql(duration: str) -> str:
    """``sketch.bucket_index`` in SQL: the same ``ceil(ln d / ln γ)`` in doubles."""
    return (
        f"CASE WHEN {duration} <= 0 THEN {sketch.ZERO_BUCKET}"
        f" ELSE CAST(ceil(ln({duration}) / {sketch.LOG_GAMMA!r}) AS INTEGER) END"
    )

"""Whether spans must stay in this process: set by Threadline's pytest plugin.

Under the plugin a test run sends nothing anywhere unless it asks to
(``pytest --threadline-export``): ``configure()`` then installs journey stamping but no
exporter and no sampling-rule poller, so the spans a test makes are seen in memory
(``threadline_spans``) with the journey keys the exporter would have sent, and never
reach the endpoint a service's settings name. A plain module with no imports, so the
plugin can set it without loading the SDK pipeline.
"""

from __future__ import annotations

_stay = False


def keep_spans_in_process(enabled: bool = True) -> None:
    """Make the next ``configure()`` export nothing (``enabled``) or export as usual."""
    global _stay
    _stay = enabled


def spans_stay_in_process() -> bool:
    """Whether ``configure()`` must keep spans in this process."""
    return _stay

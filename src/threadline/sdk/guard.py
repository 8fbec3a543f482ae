"""The one guard between Threadline's own failures and the host service.

Hooks that run inside the host (span processors, request hooks, ``journey``) call
:func:`report_internal_error` from their ``except`` block instead of letting an
exception escape: the failure is logged, at most once per interval for each place it
happened, and the host carries on. Threadline's own tests turn re-raising on with
:func:`raise_internal_errors` so a bug in a hook fails the test instead of a log line.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

logger: Final = logging.getLogger("threadline")

# A hook on the hot path can fail for every span; one line a minute per place says
# what is wrong without flooding the host's logs.
LOG_INTERVAL_S: Final = 60.0

_lock = threading.Lock()
_last_logged: dict[str, float] = {}
_suppressed: dict[str, int] = {}
_reraise = False


def raise_internal_errors(enabled: bool = True) -> None:
    """Re-raise internal errors instead of logging them (for Threadline's tests)."""
    global _reraise
    _reraise = enabled


def report_internal_error(where: str) -> None:
    """Log the exception being handled, rate-limited per ``where``; never raises unless told to.

    Call only from an ``except`` block.
    """
    if _reraise:
        raise  # the exception being handled: this is only called from an except block
    suppressed = _claim_log_line(where)
    if suppressed is None:
        return
    extra = f" ({suppressed} similar errors not logged)" if suppressed else ""
    logger.exception("Threadline: %s failed; the service is not affected%s", where, extra)


def warn_rate_limited(where: str, message: str) -> None:
    """Log ``message`` as a warning at most once per interval for ``where`` (no traceback)."""
    suppressed = _claim_log_line(where)
    if suppressed is None:
        return
    extra = f" ({suppressed} similar warnings not logged)" if suppressed else ""
    logger.warning("Threadline: %s%s", message, extra)


def _claim_log_line(where: str) -> int | None:
    """None if ``where`` logged within the interval (counted as suppressed); otherwise
    how many lines it suppressed since it last logged, now that it may log again."""
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(where)
        if last is not None and now - last < LOG_INTERVAL_S:
            _suppressed[where] = _suppressed.get(where, 0) + 1
            return None
        _last_logged[where] = now
        return _suppressed.pop(where, 0)

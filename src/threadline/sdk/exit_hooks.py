"""Flush finished spans before the process goes away.

Normal interpreter exit is covered by the ``atexit`` hook of the OpenTelemetry
``TracerProvider``. SIGTERM is not: its default action kills the process without
running ``atexit``, and SIGTERM is how containers and supervisors stop services. So
when the host has left SIGTERM at its default action, we install a handler that
flushes and then hands the signal back to that default action, so the process still
ends exactly as it would have (killed by SIGTERM). A host that installs its own
handler (before or after us) keeps full control of SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from threadline.sdk.guard import logger


def flush_on_sigterm(flush: Callable[[], object]) -> bool:
    """Run ``flush`` on SIGTERM if the host has not claimed SIGTERM; True if installed."""
    if threading.current_thread() is not threading.main_thread():
        # Python only lets the main thread install signal handlers.
        logger.debug("Threadline: configured off the main thread; no SIGTERM flush installed")
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current is not signal.SIG_DFL:
        # A Python handler, SIG_IGN, or one installed outside Python (None): the host's.
        return False

    def _flush_then_terminate(signum: int, frame: FrameType | None) -> None:
        try:
            flush()
        except Exception:
            logger.exception("Threadline: flushing spans on SIGTERM failed")
        finally:
            # Chain to the handler we displaced, the default action: restore it and
            # deliver the signal again, so exit status and supervisors see a SIGTERM.
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, _flush_then_terminate)
    return True

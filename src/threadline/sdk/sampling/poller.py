"""The remote rule poller: keeps a service's sampling rules in step with the server.

A daemon thread GETs the rule document (``<endpoint>/api/sampling`` unless
configured otherwise) with ``If-None-Match``, so an unchanged document costs a 304
and no parsing. A changed one is validated and applied from the next root span on,
without a restart. Whatever goes wrong (server down, a 404 from a plain OTLP
collector, an invalid document) leaves the last known rules in force.

Polls are spread by ±``JITTER`` of the interval so a fleet restarted together does
not poll in step. The request runs with instrumentation suppressed: polling must not
create spans of its own.

A fork keeps only the forking thread: a child of a process whose poller was running
(a worker of ``gunicorn --preload``) starts its own, or it would keep the rules of
the moment it was forked for ever.
"""

from __future__ import annotations

# Before the poller thread exists, for the reason ``sdk/export/transport.py`` gives: a
# fork while this thread imports the "idna" codec for its first request would leave
# the child's exports unable to resolve the endpoint.
import encodings.idna  # noqa: F401
import enum
import logging
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Final

from threadline.sampling_rules import RuleError, SamplingRules, parse_json
from threadline.sdk.forks import call_in_forked_children
from threadline.sdk.guard import logger
from threadline.sdk.suppression import suppress_instrumentation

# ±20% spreads a fleet's polls over 40% of the interval while keeping the interval
# a user sets recognisable.
JITTER: Final = 0.2
# A poll is a small GET; a server that takes longer is treated as unreachable.
POLL_TIMEOUT_S: Final = 5.0
# Largest rule document read: 200 rules of a few hundred bytes each, with margin.
MAX_DOCUMENT_BYTES: Final = 1024 * 1024
# What an endpoint without Threadline's rule API (a plain OTLP collector) answers.
NO_RULES_STATUS: Final = 404
# The thread is a daemon; stop() waits this long for a poll in flight to end.
STOP_TIMEOUT_S: Final = POLL_TIMEOUT_S + 1.0


class PollOutcome(enum.Enum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class RulePoller:
    """Fetches ``url`` every ``interval_s`` (jittered) and hands new rules to ``apply``."""

    def __init__(
        self,
        url: str,
        apply: Callable[[SamplingRules], None],
        interval_s: float,
        *,
        rng: random.Random | None = None,
        timeout_s: float = POLL_TIMEOUT_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be greater than 0, got {interval_s}")
        self._url = url
        self._apply = apply
        self._interval_s = interval_s
        self._rng = rng or random.Random()
        self._timeout_s = timeout_s
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restarts_in_children = False
        self._failures = 0

    @property
    def etag(self) -> str | None:
        """The validator of the rules last applied, None before the first success."""
        return self._etag

    def next_delay_s(self) -> float:
        """Seconds until the next poll: the interval, spread by ±``JITTER``."""
        return self._interval_s * (1.0 + self._rng.uniform(-JITTER, JITTER))

    def poll_once(self) -> PollOutcome:
        """One conditional GET; applies the document when it changed. Never raises."""
        request = urllib.request.Request(self._url, headers={"Accept": "application/json"})
        if self._etag is not None:
            request.add_header("If-None-Match", self._etag)
        try:
            with (
                suppress_instrumentation(),
                urllib.request.urlopen(request, timeout=self._timeout_s) as response,
            ):
                body = response.read(MAX_DOCUMENT_BYTES + 1)
                etag = response.headers.get("ETag")
            if len(body) > MAX_DOCUMENT_BYTES:
                raise RuleError("body", f"is larger than {MAX_DOCUMENT_BYTES} bytes")
            rules = parse_json(body)
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                self._failures = 0
                return PollOutcome.UNCHANGED
            if exc.code == NO_RULES_STATUS:
                # A plain OTLP collector serves no rules: a normal setup, not a fault.
                logger.debug("Threadline: %s serves no sampling rules", self._url)
                return PollOutcome.FAILED
            return self._failed(f"answered {exc.code}")
        except (OSError, RuleError, ValueError) as exc:
            # URLError, timeouts and refused connections are OSErrors.
            return self._failed(str(exc))
        self._apply(rules)
        self._etag = etag
        self._failures = 0
        return PollOutcome.UPDATED

    def start(self) -> None:
        """Poll now and then every interval, on a daemon thread, until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="threadline-rules", daemon=True)
        self._thread.start()
        if not self._restarts_in_children:
            self._restarts_in_children = True
            call_in_forked_children(self._restart_in_child)

    def _restart_in_child(self) -> None:
        if self._thread is None or self._stop.is_set():
            return  # never started, or stopped: the child's poller stays as it was
        # A new event: the parent's thread may have been inside the old one's lock.
        self._stop = threading.Event()
        self._thread = None
        self.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            if self._stop.wait(self.next_delay_s()):
                return

    def _failed(self, problem: str) -> PollOutcome:
        self._failures += 1
        # The first failure in a row is worth a line; repeats while the server stays
        # away are not (the rules in force simply stay).
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        logger.log(
            level,
            "Threadline: sampling rules from %s unavailable (%s); keeping the rules in force",
            self._url,
            problem,
        )
        return PollOutcome.FAILED

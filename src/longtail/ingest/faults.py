"""Fault injection for the crash tests: the process kills itself at a named point of an ingest."""

from __future__ import annotations

import os
import signal

FAULT_ENV = "LONGTAIL_FAULT"
"""Fault injection for crash tests: ``ingest.frame:N`` (after the N-th stored frame of a run),
``ingest.index`` (after a log's index, before its manifest) or ``ingest.log:N`` (after N logs):
the process kills itself with SIGKILL there."""


class Faults:
    """The fault point named by `FAULT_ENV` in this process, and how often it was passed."""

    def __init__(self) -> None:
        spec = os.environ.get(FAULT_ENV, "")
        self.point, _, count = spec.partition(":")
        self.count = int(count) if count else 0
        self.seen = 0

    def hit(self, point: str) -> None:
        """Pass ``point``: kill this process with SIGKILL when it is the N-th pass of the fault point."""
        if point == self.point:
            self.seen += 1
            if self.seen >= self.count:
                os.kill(os.getpid(), signal.SIGKILL)


FAULTS = Faults()
"""One per process: the counts run over the whole ingest (every log and every frame of it)."""

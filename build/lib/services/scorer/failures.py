"""Runs set aside after a failed pass: one bad run (garbage run.json, an invalid run id, a corrupt checkpoint,
a bug its data triggers) is reported and retried with backoff, and never stops the others."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class RunFailure:
    """The last error of a run whose passes fail, and when it is tried again."""

    error: str
    failures: int  # consecutive failed passes
    since: float  # unix seconds of the first of them
    retry_at: float  # monotonic seconds: the run is skipped until then

    def to_dict(self) -> dict[str, object]:
        return {"error": self.error, "failures": self.failures, "since": self.since}


class FailingRuns:
    """Per-run failure bookkeeping. The delay doubles from `base_s` up to `max_s`, so a run whose data or state
    is broken costs one attempt every `max_s` seconds; store errors are retried every `base_s`."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s, self.max_s = base_s, max_s
        self.runs: dict[str, RunFailure] = {}

    def due(self, run_id: str) -> bool:
        failure = self.runs.get(run_id)
        return failure is None or time.monotonic() >= failure.retry_at

    def failed(self, run_id: str, error: BaseException, transient: bool = False) -> RunFailure:
        """Record a failed pass. `transient`: the store's fault (unreachable, throttling), not the run's: it
        is retried at the base pace, as the whole-pass errors are."""
        prev = self.runs.get(run_id)
        n = prev.failures + 1 if prev else 1
        delay = self.base_s if transient else min(self.max_s, self.base_s * 2 ** min(n - 1, 30))
        message = f"{type(error).__name__}: {error}"[:2000]
        failure = RunFailure(message, n, prev.since if prev else time.time(), time.monotonic() + delay)
        self.runs[run_id] = failure
        return failure

    def recovered(self, run_id: str) -> bool:
        """The run's pass succeeded; True if it had been failing."""
        return self.runs.pop(run_id, None) is not None

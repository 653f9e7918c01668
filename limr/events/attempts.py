"""Exactly once across resumes: which events objects of a run count.

A run that crashes and resumes from its checkpoint at step S redoes steps S, S+1, ...; the crashed attempt may
already have written events for some of them. Deleting and rewriting them under the same keys is not enough
(a scorer that counted the old object skips the new one under the same key; a resume on fewer ranks leaves old
keys of the higher ranks that are never rewritten). Instead:

- every resume is recorded before the resumed attempt writes anything: `runs/{run}/attempts.json` lists
  `{"attempt": N, "from_step": S}` (attempt 0 is the run's first, never listed);
- attempt N >= 1 writes its events under keys of its own (`{step}-{part}-a{N:04d}.parquet`);
- an object of attempt A at step s is **superseded** when a later attempt B > A resumed at or before s: B redid
  that step. Every reader counts only the objects that are not superseded (`effective`): `list_event_keys`,
  hence `limr score` / `limr select`, and the scorer, which recounts a run from scratch when it sees a
  new attempt (a resume is rare; a recount reads the run's events once).

Superseded objects stay in the store: the record of what the crashed attempt did, never read as counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from limr.events.schema import EVENT_KEY_RE, attempts_key
from limr.store import ObjectNotFound, ObjectStore

MAX_ATTEMPTS = 9999  # the key layout's -aNNNN


class AttemptsError(ValueError):
    """An unreadable attempts.json."""


@dataclass(frozen=True)
class Resume:
    attempt: int  # >= 1
    from_step: int  # the first step this attempt ran (the checkpoint's completed steps)


@dataclass(frozen=True)
class Attempts:
    """A run's resumes, in attempt order (empty: the run never resumed)."""

    resumes: tuple[Resume, ...] = ()

    @property
    def latest(self) -> int:
        return self.resumes[-1].attempt if self.resumes else 0

    def superseded(self, step: int, attempt: int) -> bool:
        """An object of `attempt` at `step` was redone by a later attempt."""
        return any(r.attempt > attempt and r.from_step <= step for r in self.resumes)

    def effective(self, keys: Iterable[str]) -> list[str]:
        """The event keys that count (not superseded), in the order given; other keys pass through."""
        out = []
        for key in keys:
            parsed = parse_event_key(key)
            if parsed is None or not self.superseded(*parsed):
                out.append(key)
        return out


def parse_event_key(key: str) -> tuple[int, int] | None:
    """(step, attempt) of an events key, None for any other key."""
    m = EVENT_KEY_RE.match(key)
    if m is None:
        return None
    return int(m["step"]), int(m["attempt"] or 0)


def read_attempts(store: ObjectStore, run_id: str) -> Attempts:
    key = attempts_key(run_id)
    try:
        raw = store.get(key)
    except ObjectNotFound:
        return Attempts()
    try:
        doc = json.loads(raw)
        resumes = tuple(Resume(int(r["attempt"]), int(r["from_step"])) for r in doc["resumes"])
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise AttemptsError(f"{store.uri}/{key}: unreadable resume record: {type(e).__name__}: {e}") from None
    if [r.attempt for r in resumes] != list(range(1, len(resumes) + 1)) or any(r.from_step < 0 for r in resumes):
        raise AttemptsError(f"{store.uri}/{key}: attempts must be 1, 2, ... with from_step >= 0")
    return Attempts(resumes)


def record_resume(store: ObjectStore, run_id: str, from_step: int, workers: int) -> int:
    """Record that a new attempt resumes the run at `from_step`; returns its number. One writer (the learner's
    rank 0), before any event of the attempt is written."""
    attempt = read_attempts(store, run_id).latest + 1
    if attempt > MAX_ATTEMPTS:
        raise AttemptsError(f"run {run_id}: more than {MAX_ATTEMPTS} resumes")
    rows = json.loads(store.get(attempts_key(run_id)))["resumes"] if attempt > 1 else []  # keep what they say
    rows.append({"attempt": attempt, "from_step": from_step, "workers": workers, "at": time.time()})
    store.put(attempts_key(run_id), json.dumps({"resumes": rows}, indent=1).encode(), "application/json")
    return attempt
